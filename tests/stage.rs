//! `boot::stage` from an archive file (the initramfs fetch method): the kernel and
//! initramfs together are held to the budget `fetch::archive_budget` gives, the same
//! rule as for a download, and a package past it is refused naming the entry and
//! the rule.

use std::io::Cursor;

use stboot::keys;
use stboot::ospkg::{archive, Descriptor, PackagePaths};
use stboot::verify::{verify_package, Threshold};

mod common;
use common::zips::manifest;

#[test]
fn staging_from_an_archive_file_holds_kernel_and_initramfs_to_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut kernel = vec![7u8; 40_000];
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    let initrd = vec![9u8; 60_000];
    let zip = archive::write(Cursor::new(Vec::new()), &manifest(), &kernel, &initrd).unwrap().into_inner();
    let now = time::OffsetDateTime::now_utc();
    let v = keys::Validity { not_before: now - time::Duration::days(1), not_after: now + time::Duration::days(1) };
    let (root_key, leaf_key) = (keys::generate_key(), keys::generate_key());
    let root = keys::pem_to_der(&keys::root_certificate(&root_key, &v).unwrap()).unwrap();
    let leaf = keys::pem_to_der(&keys::leaf_certificate(&leaf_key, &root, &root_key, &v).unwrap()).unwrap();
    let mut desc = Descriptor::new("os.zip").unwrap();
    desc.certificates.push(stboot::pem::encode("CERTIFICATE", &leaf).into_bytes());
    desc.signatures.push(keys::sign_digest(&leaf_key, &stboot::verify::digest(&zip)).to_vec());
    let paths = PackagePaths { descriptor: dir.path().join("os.json"), archive: dir.path().join("os.zip") };
    std::fs::write(&paths.descriptor, desc.to_json()).unwrap();
    std::fs::write(&paths.archive, &zip).unwrap();
    let verified = || {
        let pkg = stboot::ospkg::package::Unverified::from_files(&paths).unwrap();
        verify_package(pkg, std::slice::from_ref(&root), Threshold::AtLeast(1), now.unix_timestamp())
            .unwrap_or_else(|r| panic!("{:#}", r.error))
    };

    // 40 000 + 60 000 bytes do not fit in 70 000: the initramfs gets the 30 000 left
    let stage = tempfile::tempdir().unwrap();
    let budget = stboot::fetch::Budget { bytes: 70_000, why: "at most 0 MiB: the test's rule".to_string() };
    let err = stboot::boot::stage(verified(), stage.path(), &budget).unwrap_err();
    let e = format!("{err:#}");
    assert!(e.contains("kernel and initramfs: at most 0 MiB: the test's rule"), "{e}");
    // a typed error with its remedy (the kind was found by searching the text before)
    let b = err.downcast_ref::<stboot::boot::BootError>().expect("a BootError");
    assert!(matches!(b, stboot::boot::BootError::OverBudget { .. }) && b.remedy().contains("more memory"), "{e}");
    assert!(e.contains("\"boot/initrd\" declares 60000 bytes, more than the limit of 30000 bytes"), "{e}");
    assert!(!stage.path().join("initramfs").exists(), "the refused entry's file is removed");

    // with room for both, both are staged with the archive's bytes
    let stage = tempfile::tempdir().unwrap();
    let budget = stboot::fetch::Budget { bytes: 100_000, why: "at most 0 MiB: the test's rule".to_string() };
    let staged = stboot::boot::stage(verified(), stage.path(), &budget).unwrap();
    assert_eq!(std::fs::read(stage.path().join("kernel")).unwrap(), kernel);
    assert_eq!(std::fs::read(stage.path().join("initramfs")).unwrap(), initrd);
    drop(staged);
}
