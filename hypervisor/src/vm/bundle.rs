//! An OS guest's files in one boot module, for loaders that pass only one
//! (QEMU's `-kernel` with `-initrd`): an uncompressed cpio archive in the
//! "newc" format (the one Linux's initramfs uses) holding `kernel`, and
//! optionally `initrd` and `cmdline`. Pure: it only finds the files.

/// The files of a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub kernel: &'a [u8],
    pub initrd: Option<&'a [u8]>,
    /// The guest's command line (a trailing newline dropped).
    pub cmdline: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// A header or file that runs past the end of the module.
    Truncated,
    /// A header field that is not 8 hex digits.
    BadHeader,
    NoKernel,
    CmdlineNotText,
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "the guest bundle (cpio) is truncated"),
            Self::BadHeader => write!(f, "the guest bundle has a malformed cpio header"),
            Self::NoKernel => write!(f, "the guest bundle has no file named kernel"),
            Self::CmdlineNotText => write!(f, "the guest bundle's cmdline is not UTF-8"),
        }
    }
}

/// The cpio "newc" magic.
const MAGIC: &[u8; 6] = b"070701";
const HEADER: usize = 110;

/// Whether `module` is a bundle (starts with the cpio magic).
pub fn is_bundle(module: &[u8]) -> bool {
    module.starts_with(MAGIC)
}

fn field(header: &[u8], n: usize) -> Result<usize, BundleError> {
    let hex = header
        .get(6 + 8 * n..14 + 8 * n)
        .ok_or(BundleError::Truncated)?;
    let text = core::str::from_utf8(hex).map_err(|_| BundleError::BadHeader)?;
    usize::from_str_radix(text, 16).map_err(|_| BundleError::BadHeader)
}

/// Finds the bundle's files; other entries (directories...) are skipped.
pub fn parse(module: &[u8]) -> Result<Bundle<'_>, BundleError> {
    let (mut kernel, mut initrd, mut cmdline) = (None, None, None);
    let mut at = 0;
    loop {
        let header = module.get(at..at + HEADER).ok_or(BundleError::Truncated)?;
        if !header.starts_with(MAGIC) {
            return Err(BundleError::BadHeader);
        }
        let (size, name_len) = (field(header, 6)?, field(header, 11)?);
        let name_at = at + HEADER;
        let name = module
            .get(name_at..name_at + name_len.saturating_sub(1))
            .ok_or(BundleError::Truncated)?;
        let data_at = (name_at + name_len).next_multiple_of(4);
        let data = module
            .get(data_at..data_at + size)
            .ok_or(BundleError::Truncated)?;
        match name {
            b"TRAILER!!!" => break,
            b"kernel" => kernel = Some(data),
            b"initrd" => initrd = Some(data),
            b"cmdline" => {
                let text = core::str::from_utf8(data).map_err(|_| BundleError::CmdlineNotText)?;
                cmdline = Some(text.trim_end_matches(['\n', '\0']));
            }
            _ => {}
        }
        at = (data_at + size).next_multiple_of(4);
    }
    Ok(Bundle {
        kernel: kernel.ok_or(BundleError::NoKernel)?,
        initrd,
        cmdline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A newc archive of `files`, as harness/linux.ts writes one.
    fn cpio(files: &[(&str, &[u8])]) -> std::vec::Vec<u8> {
        let mut out = std::vec::Vec::new();
        let all = files.iter().copied().chain([("TRAILER!!!", &b""[..])]);
        for (i, (name, data)) in all.enumerate() {
            let fields = [
                i + 1,
                0o100644,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0,
            ];
            out.extend_from_slice(MAGIC);
            for f in fields {
                out.extend_from_slice(format!("{f:08x}").as_bytes());
            }
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.resize(out.len().next_multiple_of(4), 0);
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }

    #[test]
    fn finds_the_kernel_initrd_and_command_line() {
        let b = cpio(&[
            ("kernel", b"\x7fELF..."),
            ("initrd", b"07070"),
            ("cmdline", b"console=ttyS0\n"),
        ]);
        assert!(is_bundle(&b));
        assert_eq!(
            parse(&b),
            Ok(Bundle {
                kernel: b"\x7fELF...",
                initrd: Some(b"07070"),
                cmdline: Some("console=ttyS0"),
            })
        );
        let alone = cpio(&[("kernel", b"K")]);
        assert_eq!(
            parse(&alone).map(|b| (b.initrd, b.cmdline)),
            Ok((None, None))
        );
    }

    #[test]
    fn broken_bundles_are_refused() {
        let b = cpio(&[("kernel", b"\x7fELF..."), ("initrd", b"0707")]);
        assert_eq!(parse(&b[..b.len() - 130]), Err(BundleError::Truncated));
        assert_eq!(
            parse(&cpio(&[("initrd", b"x")])),
            Err(BundleError::NoKernel)
        );
        let mut bad = b.clone();
        bad[56] = b'z'; // in the file size
        assert_eq!(parse(&bad), Err(BundleError::BadHeader));
        assert_eq!(
            parse(&cpio(&[("kernel", b"K"), ("cmdline", b"\xff")])),
            Err(BundleError::CmdlineNotText)
        );
    }
}
