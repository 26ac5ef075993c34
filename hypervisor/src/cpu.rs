//! What the CPU is and which virtualization extensions it offers.

use heapless::String;
use raw_cpuid::CpuId;
use serde::Serialize;
use x86_64::registers::model_specific::Msr;

use crate::event::Event;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Intel,
    Amd,
    Other,
}

impl Vendor {
    pub fn from_signature(sig: &str) -> Self {
        match sig {
            "GenuineIntel" => Self::Intel,
            "AuthenticAMD" => Self::Amd,
            _ => Self::Other,
        }
    }
}

/// The `cpu` event.
#[derive(Clone, Debug, Serialize)]
pub struct CpuInfo {
    pub vendor: Vendor,
    pub signature: String<12>,
    pub family: u8,
    pub model: u8,
    pub stepping: u8,
    pub brand: String<48>,
    /// CPUID 0x40000000 signature when a hypervisor or emulator says it is one.
    pub hypervisor: Option<String<12>>,
    pub vmx: bool,
    pub ept: bool,
    pub unrestricted_guest: bool,
    pub svm: bool,
    pub npt: bool,
}

impl Event for CpuInfo {
    const NAME: &'static str = "cpu";
}

const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;

/// Secondary-control features allowed to be 1, or 0 when the secondary
/// controls themselves cannot be enabled (SDM 3D A.3.2, A.3.3).
pub fn secondary_allowed(procbased: u64, procbased2: u64) -> u32 {
    const ACTIVATE_SECONDARY: u64 = 1 << 31;
    if (procbased >> 32) & ACTIVATE_SECONDARY == 0 {
        0
    } else {
        (procbased2 >> 32) as u32
    }
}
pub const SECONDARY_EPT: u32 = 1 << 1;
pub const SECONDARY_UNRESTRICTED_GUEST: u32 = 1 << 7;

fn text<const N: usize>(s: &str) -> String<N> {
    let mut out = String::new();
    for c in s.trim().chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

pub fn identify() -> CpuInfo {
    let cpuid = CpuId::new();
    let signature = cpuid
        .get_vendor_info()
        .map(|v| text(v.as_str()))
        .unwrap_or_default();
    let features = cpuid.get_feature_info();
    let vmx = features.as_ref().is_some_and(|f| f.has_vmx());
    let svm = cpuid
        .get_extended_processor_and_feature_identifiers()
        .is_some_and(|f| f.has_svm());
    let secondary = if vmx {
        // SAFETY: the VMX capability MSRs exist whenever CPUID reports VMX.
        unsafe {
            secondary_allowed(
                Msr::new(IA32_VMX_PROCBASED_CTLS).read(),
                Msr::new(IA32_VMX_PROCBASED_CTLS2).read(),
            )
        }
    } else {
        0
    };
    let hypervisor = features
        .as_ref()
        .is_some_and(|f| f.has_hypervisor())
        .then(|| {
            let leaf = raw_cpuid::cpuid!(0x4000_0000);
            let mut sig = [0u8; 12];
            for (i, reg) in [leaf.ebx, leaf.ecx, leaf.edx].iter().enumerate() {
                sig[i * 4..i * 4 + 4].copy_from_slice(&reg.to_le_bytes());
            }
            text(
                core::str::from_utf8(&sig)
                    .unwrap_or("?")
                    .trim_end_matches('\0'),
            )
        });
    CpuInfo {
        vendor: Vendor::from_signature(&signature),
        family: features.as_ref().map_or(0, |f| f.family_id()),
        model: features.as_ref().map_or(0, |f| f.model_id()),
        stepping: features.as_ref().map_or(0, |f| f.stepping_id()),
        brand: cpuid
            .get_processor_brand_string()
            .map(|b| text(b.as_str()))
            .unwrap_or_default(),
        signature,
        hypervisor,
        vmx,
        ept: secondary & SECONDARY_EPT != 0,
        unrestricted_guest: secondary & SECONDARY_UNRESTRICTED_GUEST != 0,
        svm,
        npt: svm && cpuid.get_svm_info().is_some_and(|s| s.has_nested_paging()),
    }
}

/// Turns on CR4.OSXSAVE where the CPU has XSAVE: XSETBV then runs on a
/// guest's behalf (while it runs, XCR0 is the guest's; the host itself uses
/// only FXSAVE state). Called on every CPU before any guest.
pub fn enable_xsave() {
    if raw_cpuid::cpuid!(1).ecx & (1 << 26) != 0 {
        // SAFETY: the CPU has XSAVE; OSXSAVE only enables XGETBV/XSETBV
        // and leaves XCR0 at its reset value (x87).
        unsafe {
            x86_64::registers::control::Cr4::update(|f| {
                f.insert(x86_64::registers::control::Cr4Flags::OSXSAVE)
            })
        };
    }
}

/// Loads XCR0 with a value `vcpu::cpuid::xsetbv` allowed.
pub fn set_xcr0(value: u64) {
    // SAFETY: checked as XSETBV checks it (x87 on, supported bits only,
    // AVX states together), with CR4.OSXSAVE on (`enable_xsave`).
    unsafe { x86_64::registers::xcontrol::XCr0::write_raw(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_from_signatures() {
        assert_eq!(Vendor::from_signature("GenuineIntel"), Vendor::Intel);
        assert_eq!(Vendor::from_signature("AuthenticAMD"), Vendor::Amd);
        assert_eq!(Vendor::from_signature("HygonGenuine"), Vendor::Other);
    }

    #[test]
    fn secondary_controls_count_only_when_they_can_be_activated() {
        let ctls2 = u64::from(SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST) << 32;
        assert_eq!(
            secondary_allowed(1 << 63, ctls2),
            SECONDARY_EPT | SECONDARY_UNRESTRICTED_GUEST
        );
        assert_eq!(secondary_allowed(1 << 31, ctls2), 0); // allowed-0 half, not allowed-1
        assert_eq!(secondary_allowed(0, ctls2), 0);
    }
}
