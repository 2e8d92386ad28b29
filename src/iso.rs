//! Bootable media for UEFI machines without a disk to put a UKI on: an EFI system
//! partition image (FAT, the UKI as `EFI/BOOT/BOOTX64.EFI`) and an ISO 9660 image
//! that carries it as its El Torito EFI boot image, for a BMC's virtual media or a
//! CD. Upstream `stmgr uki create -format iso` makes the same kind of ISO with
//! go-diskfs; here the FAT side is the `fatfs` crate and the ISO side is written
//! directly (one root directory, two files: the boot catalog and the ESP image).
//! Every timestamp is fixed, so the same UKI gives the same bytes.

use std::io::{Cursor, Write};

use anyhow::{ensure, Context, Result};

const SECTOR: usize = 2048;
const VOLUME_ID: &str = "STBOOT";

#[derive(Debug)]
struct FixedTime;

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date { year: 1980, month: 1, day: 1 }
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime { date: self.get_current_date(), time: fatfs::Time { hour: 0, min: 0, sec: 0, millis: 0 } }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

/// A FAT image holding `efi_program` as `EFI/BOOT/BOOTX64.EFI`, the path UEFI
/// firmware boots from removable media; its size is the program's plus 2 MiB
/// rounded up to a MiB.
pub fn esp_image(efi_program: &[u8]) -> Result<Vec<u8>> {
    let size = (efi_program.len() / (1 << 20) + 3) << 20;
    let mut disk = Cursor::new(vec![0u8; size]);
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new().volume_id(0x5354_424f).volume_label(*b"STBOOT ESP "),
    )
    .context("formatting the EFI system partition image")?;
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new().time_provider(&FIXED_TIME))
            .context("opening the EFI system partition image")?;
        {
            let boot = fs.root_dir().create_dir("EFI")?.create_dir("BOOT")?;
            let mut f = boot.create_file("BOOTX64.EFI")?;
            f.write_all(efi_program).context("writing EFI/BOOT/BOOTX64.EFI")?;
        }
        fs.unmount()?;
    }
    Ok(disk.into_inner())
}

fn both16(v: u16) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&v.to_le_bytes());
    b[2..].copy_from_slice(&v.to_be_bytes());
    b
}

fn both32(v: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&v.to_le_bytes());
    b[4..].copy_from_slice(&v.to_be_bytes());
    b
}

/// An ISO 9660 directory record (ECMA-119 9.1) with all dates zero.
fn dir_record(name: &[u8], extent: u32, len: u32, dir: bool) -> Vec<u8> {
    let size = 33 + name.len() + (name.len() + 1) % 2;
    let mut r = vec![0u8; size];
    r[0] = size as u8;
    r[2..10].copy_from_slice(&both32(extent));
    r[10..18].copy_from_slice(&both32(len));
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    r
}

/// A string field padded with spaces (a- and d-characters).
fn padded(s: &str, len: usize) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(len, b' ');
    v
}

/// "Not specified" for the volume descriptor's 17-byte dates.
const NO_DATE: &[u8; 17] = b"0000000000000000\0";

/// An ISO 9660 image whose El Torito boot catalog names `esp` (a FAT image, see
/// [`esp_image`]) as the no-emulation boot image for the EFI platform. The ESP is
/// also visible as the file `ESP.IMG`.
pub fn iso_image(esp: &[u8]) -> Result<Vec<u8>> {
    // sectors: 0-15 system area, 16 primary volume descriptor, 17 El Torito boot
    // record, 18 terminator, 19/20 path tables (L, M), 21 root directory, 22 boot
    // catalog, 23.. the ESP image
    const PVD: usize = 16;
    const BOOT_RECORD: usize = 17;
    const TERMINATOR: usize = 18;
    const PATH_L: u32 = 19;
    const PATH_M: u32 = 20;
    const ROOT: u32 = 21;
    const CATALOG: u32 = 22;
    const ESP: u32 = 23;
    let esp_sectors = esp.len().div_ceil(SECTOR);
    let total = ESP as usize + esp_sectors;
    ensure!(total <= u32::MAX as usize, "the EFI system partition image is too large for an ISO");
    let mut iso = vec![0u8; total * SECTOR];
    let sector = |n: usize| n * SECTOR..(n + 1) * SECTOR;

    // root directory: ".", "..", the boot catalog, the ESP image
    let mut root = Vec::new();
    root.extend(dir_record(&[0], ROOT, SECTOR as u32, true));
    root.extend(dir_record(&[1], ROOT, SECTOR as u32, true));
    root.extend(dir_record(b"BOOT.CAT;1", CATALOG, SECTOR as u32, false));
    root.extend(dir_record(b"ESP.IMG;1", ESP, esp.len() as u32, false));
    iso[sector(ROOT as usize)][..root.len()].copy_from_slice(&root);

    // path tables: the root alone
    let mut path = [0u8; 10];
    path[0] = 1;
    path[2..6].copy_from_slice(&ROOT.to_le_bytes());
    path[6..8].copy_from_slice(&1u16.to_le_bytes());
    iso[sector(PATH_L as usize)][..10].copy_from_slice(&path);
    path[2..6].copy_from_slice(&ROOT.to_be_bytes());
    path[6..8].copy_from_slice(&1u16.to_be_bytes());
    iso[sector(PATH_M as usize)][..10].copy_from_slice(&path);

    // primary volume descriptor (ECMA-119 8.4)
    let mut pvd = vec![0u8; SECTOR];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[8..40].copy_from_slice(&padded("", 32));
    pvd[40..72].copy_from_slice(&padded(VOLUME_ID, 32));
    pvd[80..88].copy_from_slice(&both32(total as u32));
    pvd[120..124].copy_from_slice(&both16(1));
    pvd[124..128].copy_from_slice(&both16(1));
    pvd[128..132].copy_from_slice(&both16(SECTOR as u16));
    pvd[132..140].copy_from_slice(&both32(10));
    pvd[140..144].copy_from_slice(&PATH_L.to_le_bytes());
    pvd[148..152].copy_from_slice(&PATH_M.to_be_bytes());
    pvd[156..190].copy_from_slice(&dir_record(&[0], ROOT, SECTOR as u32, true));
    pvd[190..318].copy_from_slice(&padded("", 128));
    pvd[318..446].copy_from_slice(&padded("", 128));
    pvd[446..574].copy_from_slice(&padded("STBOOT-RS STMGR", 128));
    pvd[574..702].copy_from_slice(&padded("", 128));
    pvd[702..813].copy_from_slice(&padded("", 111));
    for at in [813, 830, 847, 864] {
        pvd[at..at + 17].copy_from_slice(NO_DATE);
    }
    pvd[881] = 1;
    iso[sector(PVD)].copy_from_slice(&pvd);

    // El Torito boot record volume descriptor
    let br = &mut iso[sector(BOOT_RECORD)];
    br[1..6].copy_from_slice(b"CD001");
    br[6] = 1;
    br[7..39].copy_from_slice(&{
        let mut id = [0u8; 32];
        id[..23].copy_from_slice(b"EL TORITO SPECIFICATION");
        id
    });
    br[0x47..0x4b].copy_from_slice(&CATALOG.to_le_bytes());

    let term = &mut iso[sector(TERMINATOR)];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;

    // boot catalog: validation entry (platform EFI) and the default entry
    let mut cat = [0u8; 64];
    cat[0] = 1;
    cat[1] = 0xef;
    cat[4..4 + 9].copy_from_slice(b"stboot-rs");
    cat[30] = 0x55;
    cat[31] = 0xaa;
    let sum = cat[..32].chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
    cat[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    cat[32] = 0x88; // bootable
    cat[33] = 0; // no emulation
                 // the image's size in 512-byte sectors; 0 (firmware reads to the end of the
                 // volume) when it does not fit 16 bits, as for most UKIs
    let virtual_sectors = esp.len().div_ceil(512);
    let count = if virtual_sectors <= 0xffff { virtual_sectors as u16 } else { 0 };
    cat[38..40].copy_from_slice(&count.to_le_bytes());
    cat[40..44].copy_from_slice(&ESP.to_le_bytes());
    iso[sector(CATALOG as usize)][..64].copy_from_slice(&cat);

    let at = ESP as usize * SECTOR;
    iso[at..at + esp.len()].copy_from_slice(esp);
    Ok(iso)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_esp_holds_the_program_at_the_removable_media_path() {
        let program: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let esp = esp_image(&program).unwrap();
        let fs = fatfs::FileSystem::new(Cursor::new(esp.clone()), fatfs::FsOptions::new()).unwrap();
        let mut back = Vec::new();
        fs.root_dir().open_file("EFI/BOOT/BOOTX64.EFI").unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, program);
        assert_eq!(esp_image(&program).unwrap(), esp, "same input, same bytes");
    }

    #[test]
    fn the_iso_names_the_esp_as_its_efi_boot_image() {
        let esp = esp_image(b"MZ pretend UKI").unwrap();
        let iso = iso_image(&esp).unwrap();
        assert_eq!(&iso[16 * SECTOR + 1..16 * SECTOR + 6], b"CD001");
        assert_eq!(&iso[17 * SECTOR + 7..17 * SECTOR + 30], b"EL TORITO SPECIFICATION");
        let catalog = u32::from_le_bytes(iso[17 * SECTOR + 0x47..17 * SECTOR + 0x4b].try_into().unwrap()) as usize;
        let cat = &iso[catalog * SECTOR..catalog * SECTOR + 64];
        let sum = cat[..32].chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
        assert_eq!((cat[1], sum, cat[30], cat[31]), (0xef, 0, 0x55, 0xaa), "validation entry");
        assert_eq!((cat[32], cat[33]), (0x88, 0), "bootable, no emulation");
        let lba = u32::from_le_bytes(cat[40..44].try_into().unwrap()) as usize;
        assert_eq!(&iso[lba * SECTOR..lba * SECTOR + esp.len()], &esp[..]);
        let total = u32::from_le_bytes(iso[16 * SECTOR + 80..16 * SECTOR + 84].try_into().unwrap()) as usize;
        assert_eq!(total * SECTOR, iso.len());
    }
}
