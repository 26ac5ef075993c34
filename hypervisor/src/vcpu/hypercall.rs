//! The hypercall ABI (docs/hypercalls.md): VMCALL on Intel, VMMCALL on AMD,
//! the same numbers. RAX selects the call, RBX, RCX (and for `assert` RDX
//! and RSI) are its arguments, RAX returns 0 or `UNKNOWN`.

use super::GuestRegs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// Report `value` under a `tag` the scenario chooses.
    Report {
        value: u64,
        tag: u64,
    },
    /// Print `len` bytes (at most `PRINT_MAX`) at guest-physical `gpa`.
    Print {
        gpa: u64,
        len: u64,
    },
    /// A check the guest made: `passed` or not, numbered `check`.
    Result {
        passed: bool,
        check: u64,
    },
    /// The guest is done, with `status` (0: success).
    Exit {
        status: u64,
    },
    /// A check the guest made failed (`payloads/assert.inc`): `left` and
    /// `right` compared, at source `line`, described by the NUL-terminated
    /// text at guest-physical `text`. The guest ends, failed.
    Assert {
        left: u64,
        right: u64,
        text: u64,
        line: u64,
    },
    /// Does nothing: a round trip, for measuring the exit path.
    Nop,
    /// Waits until every vCPU still running has made the call.
    Barrier,
    /// Gives the page at `gpa` back to the hypervisor (its next access
    /// reads zeros), as a balloon driver or free-page reporting would.
    Release {
        gpa: u64,
    },
    /// Moves the page at `gpa` to the node of proximity domain `node`
    /// (a NUMA-aware guest's request, and the migration mechanism's test).
    Migrate {
        gpa: u64,
        node: u64,
    },
    Unknown {
        nr: u64,
    },
    /// Any call from outside the guest's kernel (CPL > 0): not honoured.
    Denied {
        nr: u64,
    },
}

pub const REPORT: u64 = 0;
pub const PRINT: u64 = 1;
pub const RESULT: u64 = 2;
pub const EXIT: u64 = 3;
pub const ASSERT: u64 = 4;
pub const NOP: u64 = 5;
pub const BARRIER: u64 = 6;
pub const RELEASE: u64 = 7;
pub const MIGRATE: u64 = 8;
pub const PRINT_MAX: u64 = 256;
/// RAX after an unknown call.
pub const UNKNOWN: u64 = u64::MAX;

impl Hypercall {
    pub fn decode(regs: &GuestRegs) -> Self {
        let (rbx, rcx) = (regs.rbx, regs.rcx);
        match regs.rax {
            REPORT => Self::Report {
                value: rbx,
                tag: rcx,
            },
            PRINT => Self::Print { gpa: rbx, len: rcx },
            RESULT => Self::Result {
                passed: rbx == 0,
                check: rcx,
            },
            EXIT => Self::Exit { status: rbx },
            ASSERT => Self::Assert {
                left: rbx,
                right: rcx,
                text: regs.rdx,
                line: regs.rsi,
            },
            NOP => Self::Nop,
            BARRIER => Self::Barrier,
            RELEASE => Self::Release { gpa: rbx },
            MIGRATE => Self::Migrate {
                gpa: rbx,
                node: rcx,
            },
            nr => Self::Unknown { nr },
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Report { .. } => "report",
            Self::Print { .. } => "print",
            Self::Result { .. } => "result",
            Self::Exit { .. } => "exit",
            Self::Assert { .. } => "assert",
            Self::Nop => "nop",
            Self::Barrier => "barrier",
            Self::Release { .. } => "release",
            Self::Migrate { .. } => "migrate",
            Self::Unknown { .. } => "unknown",
            Self::Denied { .. } => "denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(rax: u64, rbx: u64, rcx: u64) -> Hypercall {
        Hypercall::decode(&GuestRegs {
            rax,
            rbx,
            rcx,
            rdx: 0x9100,
            rsi: 12,
            ..Default::default()
        })
    }

    #[test]
    fn decodes_each_call() {
        assert_eq!(
            decode(0, 0x5ca1ab1e, 7),
            Hypercall::Report {
                value: 0x5ca1ab1e,
                tag: 7
            }
        );
        assert_eq!(
            decode(1, 0x9000, 12),
            Hypercall::Print {
                gpa: 0x9000,
                len: 12
            }
        );
        assert_eq!(
            decode(2, 0, 3),
            Hypercall::Result {
                passed: true,
                check: 3
            }
        );
        assert_eq!(
            decode(2, 1, 3),
            Hypercall::Result {
                passed: false,
                check: 3
            }
        );
        assert_eq!(decode(3, 4, 0), Hypercall::Exit { status: 4 });
        assert_eq!(
            decode(4, 5, 3),
            Hypercall::Assert {
                left: 5,
                right: 3,
                text: 0x9100,
                line: 12
            }
        );
        assert_eq!(decode(99, 0, 0).name(), "unknown");
    }
}
