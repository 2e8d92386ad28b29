//! The x86 Linux kernel image (bzImage) as a package's kernel, or a UKI's `.linux`,
//! is recognised by its boot protocol header.

/// The end of the boot protocol's header magic "HdrS" at offset 0x202: how many
/// bytes of a kernel [`is_bzimage`] needs.
pub const MAGIC_END: usize = 0x206;

/// Whether `head` (the first bytes of a kernel) carries the x86 boot header.
pub fn is_bzimage(head: &[u8]) -> bool {
    head.get(0x202..MAGIC_END) == Some(b"HdrS")
}
