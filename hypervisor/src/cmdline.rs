//! The kernel command line: space-separated `key=value` options.

use core::fmt;

/// Faults the kernel can be told to provoke, so that the harness's crash and
/// timeout verdicts are tested against a real emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// Spin forever with interrupts off.
    Hang,
    /// Execute `ud2`.
    InvalidOpcode,
    /// Read an address outside the identity map.
    PageFault,
    /// Fault with no usable IDT: the CPU shuts down.
    TripleFault,
    /// A Rust panic.
    Panic,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub selftest: Option<SelfTest>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    Unknown(&'a str),
    BadValue {
        key: &'a str,
        value: &'a str,
        expected: &'static str,
    },
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(opt) => write!(f, "unknown option '{opt}'"),
            Self::BadValue {
                key,
                value,
                expected,
            } => {
                write!(
                    f,
                    "bad value '{value}' for '{key}': expected one of {expected}"
                )
            }
        }
    }
}

const SELFTESTS: &str = "hang, invalid-opcode, page-fault, triple-fault, panic";

/// Parses `line`; the first bad option is returned as an error.
pub fn parse(line: &str) -> Result<Options, OptionError<'_>> {
    let mut opts = Options::default();
    for word in line.split_ascii_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "selftest" => {
                opts.selftest = Some(match value {
                    "hang" => SelfTest::Hang,
                    "invalid-opcode" => SelfTest::InvalidOpcode,
                    "page-fault" => SelfTest::PageFault,
                    "triple-fault" => SelfTest::TripleFault,
                    "panic" => SelfTest::Panic,
                    _ => {
                        return Err(OptionError::BadValue {
                            key,
                            value,
                            expected: SELFTESTS,
                        });
                    }
                })
            }
            _ => return Err(OptionError::Unknown(word)),
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_blank_lines_give_defaults() {
        assert_eq!(parse(""), Ok(Options::default()));
        assert_eq!(parse("   \t "), Ok(Options::default()));
    }

    #[test]
    fn parses_selftests() {
        assert_eq!(
            parse("selftest=hang").unwrap().selftest,
            Some(SelfTest::Hang)
        );
        assert_eq!(
            parse(" selftest=page-fault ").unwrap().selftest,
            Some(SelfTest::PageFault)
        );
    }

    #[test]
    fn names_the_bad_option() {
        assert_eq!(
            parse("selftest=hang bogus"),
            Err(OptionError::Unknown("bogus"))
        );
        let err = parse("selftest=explode").unwrap_err();
        assert!(matches!(
            err,
            OptionError::BadValue {
                value: "explode",
                ..
            }
        ));
        let text = format!("{err}");
        assert!(text.contains("hang, invalid-opcode"), "{text}");
    }
}
