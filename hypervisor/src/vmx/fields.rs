//! VMCS field encodings (SDM 3D appendix B), one enum per width so that a
//! field is only ever read or written with the integer type it holds.
//! Bits 14:13 of an encoding give its width; tests check every variant.

macro_rules! fields {
    ($name:ident, $width:expr, { $($field:ident = $code:expr,)* }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name { $($field = $code,)* }
        impl $name {
            /// Encoding bits 14:13 for this width.
            pub const WIDTH: u32 = $width;
            #[cfg(test)]
            pub const ALL: &'static [Self] = &[$(Self::$field,)*];
        }
    };
}

fields!(Field16, 0, {
    Vpid = 0x0000,
    GuestEsSelector = 0x0800,
    GuestCsSelector = 0x0802,
    GuestSsSelector = 0x0804,
    GuestDsSelector = 0x0806,
    GuestFsSelector = 0x0808,
    GuestGsSelector = 0x080a,
    GuestLdtrSelector = 0x080c,
    GuestTrSelector = 0x080e,
    HostEsSelector = 0x0c00,
    HostCsSelector = 0x0c02,
    HostSsSelector = 0x0c04,
    HostDsSelector = 0x0c06,
    HostFsSelector = 0x0c08,
    HostGsSelector = 0x0c0a,
    HostTrSelector = 0x0c0c,
});

fields!(Field64, 1, {
    IoBitmapA = 0x2000,
    IoBitmapB = 0x2002,
    MsrBitmap = 0x2004,
    EptPointer = 0x201a,
    GuestPhysicalAddress = 0x2400,
    VmcsLinkPointer = 0x2800,
    GuestDebugCtl = 0x2802,
    GuestPat = 0x2804,
    GuestEfer = 0x2806,
    HostPat = 0x2c00,
    HostEfer = 0x2c02,
});

fields!(Field32, 2, {
    PinControls = 0x4000,
    ProcControls = 0x4002,
    ExceptionBitmap = 0x4004,
    Cr3TargetCount = 0x400a,
    ExitControls = 0x400c,
    ExitMsrStoreCount = 0x400e,
    ExitMsrLoadCount = 0x4010,
    EntryControls = 0x4012,
    EntryMsrLoadCount = 0x4014,
    EntryInterruptionInfo = 0x4016,
    EntryExceptionErrorCode = 0x4018,
    EntryInstructionLength = 0x401a,
    SecondaryControls = 0x401e,
    InstructionError = 0x4400,
    ExitReason = 0x4402,
    ExitInterruptionInfo = 0x4404,
    ExitInterruptionErrorCode = 0x4406,
    IdtVectoringInfo = 0x4408,
    IdtVectoringErrorCode = 0x440a,
    ExitInstructionLength = 0x440c,
    GuestEsLimit = 0x4800,
    GuestCsLimit = 0x4802,
    GuestSsLimit = 0x4804,
    GuestDsLimit = 0x4806,
    GuestFsLimit = 0x4808,
    GuestGsLimit = 0x480a,
    GuestLdtrLimit = 0x480c,
    GuestTrLimit = 0x480e,
    GuestGdtrLimit = 0x4810,
    GuestIdtrLimit = 0x4812,
    GuestEsAccess = 0x4814,
    GuestCsAccess = 0x4816,
    GuestSsAccess = 0x4818,
    GuestDsAccess = 0x481a,
    GuestFsAccess = 0x481c,
    GuestGsAccess = 0x481e,
    GuestLdtrAccess = 0x4820,
    GuestTrAccess = 0x4822,
    GuestInterruptibility = 0x4824,
    GuestActivityState = 0x4826,
    GuestSysenterCs = 0x482a,
    PreemptionTimer = 0x482e,
    HostSysenterCs = 0x4c00,
});

fields!(FieldNatural, 3, {
    Cr0GuestHostMask = 0x6000,
    Cr4GuestHostMask = 0x6002,
    Cr0ReadShadow = 0x6004,
    Cr4ReadShadow = 0x6006,
    ExitQualification = 0x6400,
    GuestLinearAddress = 0x640a,
    GuestCr0 = 0x6800,
    GuestCr3 = 0x6802,
    GuestCr4 = 0x6804,
    GuestEsBase = 0x6806,
    GuestCsBase = 0x6808,
    GuestSsBase = 0x680a,
    GuestDsBase = 0x680c,
    GuestFsBase = 0x680e,
    GuestGsBase = 0x6810,
    GuestLdtrBase = 0x6812,
    GuestTrBase = 0x6814,
    GuestGdtrBase = 0x6816,
    GuestIdtrBase = 0x6818,
    GuestDr7 = 0x681a,
    GuestRsp = 0x681c,
    GuestRip = 0x681e,
    GuestRflags = 0x6820,
    GuestPendingDebug = 0x6822,
    GuestSysenterEsp = 0x6824,
    GuestSysenterEip = 0x6826,
    HostCr0 = 0x6c00,
    HostCr3 = 0x6c02,
    HostCr4 = 0x6c04,
    HostFsBase = 0x6c06,
    HostGsBase = 0x6c08,
    HostTrBase = 0x6c0a,
    HostGdtrBase = 0x6c0c,
    HostIdtrBase = 0x6c0e,
    HostSysenterEsp = 0x6c10,
    HostSysenterEip = 0x6c12,
    HostRsp = 0x6c14,
    HostRip = 0x6c16,
});

#[cfg(test)]
mod tests {
    use super::*;

    fn check(codes: impl Iterator<Item = u32>, width: u32) {
        for code in codes {
            assert_eq!((code >> 13) & 3, width, "{code:#x} has the wrong width");
            assert_eq!(code & 1, 0, "{code:#x} is a high-half access");
        }
    }

    #[test]
    fn every_encoding_has_the_width_of_its_enum() {
        check(Field16::ALL.iter().map(|f| *f as u32), Field16::WIDTH);
        check(Field64::ALL.iter().map(|f| *f as u32), Field64::WIDTH);
        check(Field32::ALL.iter().map(|f| *f as u32), Field32::WIDTH);
        check(
            FieldNatural::ALL.iter().map(|f| *f as u32),
            FieldNatural::WIDTH,
        );
    }
}
