//! ACPI: finding and validating the RSDP. Table parsers come with NUMA
//! discovery.

pub mod rsdp;
