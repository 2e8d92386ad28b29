//! Every fixed path stboot reads or mounts, once. `initramfs/layout.txt` puts the
//! files there; a test in `crate::initramfs` keeps the two in sync.

/// The trust policy directory.
pub const TRUST_POLICY_DIR: &str = "/etc/trust_policy";
/// The host configuration in the initramfs.
pub const HOST_CONFIG_PATH: &str = "/etc/host_configuration.json";
/// Kernel modules, loaded at start.
pub const MODULES_DIR: &str = "/lib/modules";
/// Lists of module names in load order (`*.conf`).
pub const MODULES_LOAD_DIR: &str = "/lib/modules-load.d";
/// The list `stmgr initramfs build` writes.
pub const MODULES_LIST: &str = "/lib/modules-load.d/stboot.conf";
/// OS packages for fetch method `initramfs` and the provisioning package.
pub const OSPKG_DIR: &str = "/ospkg";
/// stboot itself.
pub const INIT: &str = "/init";
/// The console PID 1 attaches to.
pub const CONSOLE: &str = "/dev/console";
/// Where packages are staged (on the /tmp tmpfs: nothing is written to disk).
pub const STAGING_DIR: &str = "/tmp/stboot";
/// Where the kernel exposes EFI variables (efivarfs).
pub const EFIVARS_DIR: &str = "/sys/firmware/efi/efivars";
/// The host configuration in an EFI variable (4 attribute bytes, then JSON).
pub const HOST_CONFIG_EFIVAR: &str = "/sys/firmware/efi/efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7";
