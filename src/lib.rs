//! stboot: System Transparency's network bootloader, in Rust.
//!
//! The modules follow the data flow of a boot:
//!
//! | step | module |
//! |---|---|
//! | PID 1 duties: mounts, kernel modules, console | [`init`] |
//! | trust policy, signing roots, host configuration, kernel command line | [`config`] |
//! | links, static addresses, DHCP, bonding over netlink | [`network`] |
//! | download of descriptor and archive over HTTPS | [`fetch`] |
//! | decryption of age-encrypted packages right after download | [`decrypt`] |
//! | OS package formats (descriptor, archive, manifest) | [`ospkg`] |
//! | signature verification | [`verify`] |
//! | TPM measurements of what is booted | [`measure`] (the device: [`tpm`]) |
//! | staging and kexec | [`boot`] |
//! | what the OS receives: event logs and the boot report | [`handoff`] |
//! | what happens after a failure | [`recovery`] |
//! | the provisioning package: Ctrl-C, no host configuration, or every attempt failed | [`provision`] |
//!
//! Operator-side helpers used by `stmgr` live in [`keys`] (keys and certificates),
//! [`sign`] (signatures and Sigsum proofs added to a package), [`initramfs`] (the
//! cpio builder), [`uki`] and [`iso`] (UEFI images) and [`secureboot`] (Authenticode
//! signing of the UKI), and [`attest`] (evidence of what a machine booted: the TPM
//! quote, the AK enrolment and the verifier).

pub mod attest;
pub mod boot;
pub mod config;
pub mod decrypt;
pub mod digest;
pub mod efivars;
pub mod fetch;
pub mod files;
pub mod gojson;
pub mod handoff;
pub mod init;
pub mod initramfs;
pub mod io;
pub mod iso;
pub mod keys;
pub mod measure;
pub mod network;
pub mod ospkg;
pub mod pem;
pub mod provision;
pub mod recovery;
pub mod secureboot;
pub mod sign;
pub mod sys;
pub mod text;
pub mod tpm;
pub mod uki;
pub mod verify;

/// The version printed in the start-up summary and by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Seconds since the Unix epoch at which this binary was built (`SOURCE_DATE_EPOCH`,
/// else the time of the last git commit, else 0). The clock is never trusted to be
/// earlier than this: see [`verify::effective_now`].
pub const BUILD_UNIX_TIME: u64 = {
    match u64::from_str_radix(env!("STBOOT_BUILD_UNIX_TIME"), 10) {
        Ok(v) => v,
        Err(_) => 0,
    }
};
