//! Typed access to the current VMCS: each width has its reader and writer.

use super::fields::{Field16, Field32, Field64, FieldNatural};
use super::instructions::{VmFail, vmread, vmwrite};

pub fn read16(f: Field16) -> u16 {
    vmread(f as u32).map_or(0, |v| v as u16)
}
pub fn read32(f: Field32) -> u32 {
    vmread(f as u32).map_or(0, |v| v as u32)
}
pub fn read64(f: Field64) -> u64 {
    vmread(f as u32).unwrap_or(0)
}
pub fn read(f: FieldNatural) -> u64 {
    vmread(f as u32).unwrap_or(0)
}

// SAFETY (all writers): they only write fields of the current VMCS, which
// the caller made current; VM entry checks whatever values are invalid.
pub fn write16(f: Field16, v: u16) -> Result<(), VmFail> {
    unsafe { vmwrite(f as u32, v.into()) }
}
pub fn write32(f: Field32, v: u32) -> Result<(), VmFail> {
    unsafe { vmwrite(f as u32, v.into()) }
}
pub fn write64(f: Field64, v: u64) -> Result<(), VmFail> {
    unsafe { vmwrite(f as u32, v) }
}
pub fn write(f: FieldNatural, v: u64) -> Result<(), VmFail> {
    unsafe { vmwrite(f as u32, v) }
}
