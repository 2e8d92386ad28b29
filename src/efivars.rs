//! The host configuration as an EFI variable, `STHostConfig` (vendor GUID
//! f401f2c1-b005-4be0-8cee-f2e5945bcbe7, attributes non-volatile, boot service and
//! runtime access), where stboot reads it from efivarfs
//! ([`crate::config::HOST_CONFIG_EFIVAR`]): written onto a running UEFI machine
//! (an efivarfs file: 4 attribute bytes, then the data) or into an OVMF variable
//! store file (`OVMF_VARS.fd`) before the machine first boots.
//!
//! An OVMF variable store is a firmware volume (EFI_FIRMWARE_VOLUME_HEADER, file
//! system gEfiSystemNvDataFvGuid) whose body starts with a VARIABLE_STORE_HEADER
//! (authenticated or plain), then variables, each a header, its UTF-16 name and
//! its data, 4-byte aligned; free space is 0xFF. Setting a variable marks an
//! existing one of that name deleted and appends the new one after the last, as
//! the firmware itself does (edk2 MdeModulePkg/Include/Guid/VariableFormat.h).

use anyhow::{bail, Context, Result};

/// `STHostConfig`'s vendor GUID, as text.
pub const HOST_CONFIG_GUID: &str = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7";
/// `STHostConfig`.
pub const HOST_CONFIG_NAME: &str = "STHostConfig";
/// EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS.
pub const ATTRIBUTES: u32 = 7;

const FV_SIGNATURE: &[u8; 4] = b"_FVH";
const NV_DATA_FV_GUID: &str = "fff12b8d-7696-4c8b-a985-2747075b4f50";
const AUTHENTICATED_VARIABLE_GUID: &str = "aaf32c78-947b-439a-a180-2e144ec37792";
const VARIABLE_GUID: &str = "ddcf3616-3275-4164-98b6-fe85707ffe7d";
const START_ID: u16 = 0x55AA;
const VAR_ADDED: u8 = 0x3F;
const VAR_DELETED: u8 = 0xFD;
const VAR_IN_DELETED_TRANSITION: u8 = 0xFE;

/// A GUID in its on-disk byte order (the first three fields little-endian).
pub fn guid_bytes(text: &str) -> Result<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let raw = crate::digest::unhex(&hex).filter(|b| b.len() == 16 && text.len() == 36);
    let Some(b) = raw else { bail!("{text:?}: not a GUID (8-4-4-4-12 hex digits)") };
    let mut g = [0u8; 16];
    g[..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
    g[4..6].copy_from_slice(&[b[5], b[4]]);
    g[6..8].copy_from_slice(&[b[7], b[6]]);
    g[8..].copy_from_slice(&b[8..]);
    Ok(g)
}

/// The efivarfs file of `STHostConfig` carrying `data`: the attributes, then the data.
pub fn efivarfs_file(data: &[u8]) -> Vec<u8> {
    let mut v = ATTRIBUTES.to_le_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

/// Set `STHostConfig` to `data` in the efivarfs at `dir` (on a running UEFI
/// machine, /sys/firmware/efi/efivars); the file written.
pub fn write_efivarfs(dir: &std::path::Path, data: &[u8]) -> Result<std::path::PathBuf> {
    use std::io::Write;
    if !dir.is_dir() {
        bail!(
            "{}: no efivarfs here (not booted with UEFI, or efivarfs not mounted: mount -t efivarfs efivarfs {})",
            dir.display(),
            crate::config::paths::EFIVARS_DIR
        );
    }
    let path = dir.join(format!("{HOST_CONFIG_NAME}-{HOST_CONFIG_GUID}"));
    if let Ok(f) = std::fs::File::open(&path) {
        // efivarfs makes existing variables immutable; other file systems may not
        // know the flag at all
        match crate::sys::clear_immutable(&f) {
            Err(e) if e.raw_os_error() != Some(libc::ENOTTY) && e.raw_os_error() != Some(libc::EINVAL) => {
                return Err(e).with_context(|| format!("{}: cannot clear the immutable flag", path.display()));
            }
            _ => {}
        }
    }
    // efivarfs takes the attributes and the data in one write
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open for writing", path.display()))?;
    f.write_all(&efivarfs_file(data)).with_context(|| format!("{}: cannot write the variable", path.display()))?;
    Ok(path)
}

/// Where the variable store of an OVMF variable file lives, and its kind.
struct Store {
    /// Offset of the first variable header.
    start: usize,
    /// Offset just past the store.
    end: usize,
    authenticated: bool,
}

fn store(fd: &[u8]) -> Result<Store> {
    let u16_at = |o: usize| fd.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| fd.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if fd.get(40..44) != Some(FV_SIGNATURE) || fd.get(16..32) != Some(&guid_bytes(NV_DATA_FV_GUID)?[..]) {
        bail!("not an OVMF variable store (no firmware volume with the NV data GUID at the start; expected a file like /usr/share/OVMF/OVMF_VARS_4M.fd)");
    }
    let header = u16_at(48).context("a truncated firmware volume header")? as usize;
    let signature = fd.get(header..header + 16).context("no variable store header after the firmware volume header")?;
    let authenticated = if signature == guid_bytes(AUTHENTICATED_VARIABLE_GUID)? {
        true
    } else if signature == guid_bytes(VARIABLE_GUID)? {
        false
    } else {
        bail!(
            "the variable store has an unknown signature (neither gEfiAuthenticatedVariableGuid nor gEfiVariableGuid)"
        );
    };
    let size = u32_at(header + 16).context("a truncated variable store header")? as usize;
    let (format, state) = (fd.get(header + 20), fd.get(header + 21));
    if format != Some(&0x5A) || state != Some(&0xFE) {
        bail!("the variable store is not formatted and healthy (format {format:?}, state {state:?})");
    }
    let end =
        header.checked_add(size).filter(|&e| e <= fd.len()).context("the variable store is larger than the file")?;
    Ok(Store { start: align4(header + 28), end, authenticated })
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One variable in the store.
struct Entry {
    at: usize,
    state: u8,
    name: Vec<u8>,
    guid: [u8; 16],
    data: std::ops::Range<usize>,
}

fn entries(fd: &[u8], s: &Store) -> Result<(Vec<Entry>, usize)> {
    let header_len = if s.authenticated { 60 } else { 32 };
    let mut v = Vec::new();
    let mut at = s.start;
    while at + header_len <= s.end && fd[at..at + 2] == START_ID.to_le_bytes() {
        let u32_at = |o: usize| u32::from_le_bytes(fd[o..o + 4].try_into().expect("4 bytes")) as usize;
        let (name_size, data_size, guid_at) = if s.authenticated {
            (u32_at(at + 36), u32_at(at + 40), at + 44)
        } else {
            (u32_at(at + 8), u32_at(at + 12), at + 16)
        };
        let name_at = at + header_len;
        let next = name_at
            .checked_add(name_size)
            .and_then(|n| n.checked_add(data_size))
            .filter(|&n| n <= s.end)
            .with_context(|| format!("the variable at offset 0x{at:x} runs past the store"))?;
        v.push(Entry {
            at,
            state: fd[at + 2],
            name: fd[name_at..name_at + name_size].to_vec(),
            guid: fd[guid_at..guid_at + 16].try_into().expect("16 bytes"),
            data: name_at + name_size..next,
        });
        at = align4(next);
    }
    Ok((v, at))
}

fn utf16z(name: &str) -> Vec<u8> {
    name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

fn live(state: u8) -> bool {
    state == VAR_ADDED || state == VAR_ADDED & VAR_IN_DELETED_TRANSITION
}

/// `fd` with `STHostConfig` set to `data`: any earlier one marked deleted, the new
/// one appended.
pub fn set_in_store(fd: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let s = store(fd)?;
    let (list, free) = entries(fd, &s)?;
    let (name, guid) = (utf16z(HOST_CONFIG_NAME), guid_bytes(HOST_CONFIG_GUID)?);
    let mut out = fd.to_vec();
    for e in list.iter().filter(|e| live(e.state) && e.name == name && e.guid == guid) {
        out[e.at + 2] &= VAR_DELETED;
    }
    let mut var = Vec::new();
    var.extend_from_slice(&START_ID.to_le_bytes());
    var.extend_from_slice(&[VAR_ADDED, 0]);
    var.extend_from_slice(&ATTRIBUTES.to_le_bytes());
    if s.authenticated {
        var.extend_from_slice(&[0; 8 + 16 + 4]); // MonotonicCount, TimeStamp, PubKeyIndex
    }
    var.extend_from_slice(&(name.len() as u32).to_le_bytes());
    var.extend_from_slice(&(data.len() as u32).to_le_bytes());
    var.extend_from_slice(&guid);
    var.extend_from_slice(&name);
    var.extend_from_slice(data);
    if free + var.len() > s.end || out[free..free + var.len()].iter().any(|&b| b != 0xFF) {
        bail!(
            "the variable store has {} bytes free, {} needed (a store full of deleted variables is compacted by the firmware at its next boot)",
            s.end.saturating_sub(free),
            var.len()
        );
    }
    out[free..free + var.len()].copy_from_slice(&var);
    Ok(out)
}

/// The data of the live `STHostConfig` in an OVMF variable store, if any.
pub fn get_from_store(fd: &[u8]) -> Result<Option<Vec<u8>>> {
    let s = store(fd)?;
    let (list, _) = entries(fd, &s)?;
    let (name, guid) = (utf16z(HOST_CONFIG_NAME), guid_bytes(HOST_CONFIG_GUID)?);
    Ok(list.iter().find(|e| live(e.state) && e.name == name && e.guid == guid).map(|e| fd[e.data.clone()].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stored_mixed_endian() {
        assert_eq!(
            guid_bytes("f401f2c1-b005-4be0-8cee-f2e5945bcbe7").unwrap(),
            [0xc1, 0xf2, 0x01, 0xf4, 0x05, 0xb0, 0xe0, 0x4b, 0x8c, 0xee, 0xf2, 0xe5, 0x94, 0x5b, 0xcb, 0xe7]
        );
        assert!(guid_bytes("f401f2c1b0054be08ceef2e5945bcbe7").is_err());
        assert!(guid_bytes("x401f2c1-b005-4be0-8cee-f2e5945bcbe7").is_err());
    }

    #[test]
    fn the_efivarfs_file_is_the_attributes_then_the_data() {
        assert_eq!(efivarfs_file(b"{}"), [7, 0, 0, 0, b'{', b'}']);
    }

    #[test]
    fn a_file_that_is_no_store_is_named_as_such() {
        let e = set_in_store(&[0u8; 4096], b"{}").unwrap_err();
        assert!(e.to_string().contains("not an OVMF variable store"), "{e}");
    }
}
