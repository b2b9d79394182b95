//! Tests of `st_host::efi` against a temporary directory laid out like efivarfs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use st_host::efi::{
    ATTR_NV_BS_RT, EfiError, Efivarfs, MAX_VARIABLE_BYTES, ST_VENDOR_GUID, Variable,
};

fn var_file(efi: &Efivarfs, name: &str) -> std::path::PathBuf {
    efi.root.join(format!("{name}-{ST_VENDOR_GUID}"))
}

#[test]
fn system_path() {
    assert_eq!(
        Efivarfs::system().root,
        std::path::Path::new("/sys/firmware/efi/efivars")
    );
}

#[test]
fn read_parses_attributes_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path());
    let mut bytes = vec![0x07, 0, 0, 0];
    bytes.extend_from_slice(br#"{"network_mode":"dhcp"}"#);
    std::fs::write(var_file(&efi, "STHostConfig"), &bytes).unwrap();

    let var = efi.read("STHostConfig", ST_VENDOR_GUID).unwrap().unwrap();
    assert_eq!(var.attributes, 7);
    assert_eq!(var.data, br#"{"network_mode":"dhcp"}"#);
    // Upper-case GUIDs name the same (lower-case) file.
    let upper = ST_VENDOR_GUID.to_ascii_uppercase();
    assert_eq!(efi.read("STHostConfig", &upper).unwrap(), Some(var));
}

#[test]
fn read_absent_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path());
    assert_eq!(efi.read("STHostConfig", ST_VENDOR_GUID).unwrap(), None);
    // Even when the efivarfs directory itself is missing (not mounted).
    let efi = Efivarfs::at(dir.path().join("not-mounted"));
    assert_eq!(efi.read("STHostConfig", ST_VENDOR_GUID).unwrap(), None);
}

#[test]
fn read_rejects_short_and_oversized_files() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path());
    std::fs::write(var_file(&efi, "Short"), [7, 0, 0]).unwrap();
    let err = efi.read("Short", ST_VENDOR_GUID).unwrap_err();
    assert!(matches!(err, EfiError::Truncated { len: 3, .. }), "{err}");
    assert!(err.to_string().contains("Short-f401f2c1"), "{err}");

    // Exactly the header: an empty value.
    std::fs::write(var_file(&efi, "Empty"), [7, 0, 0, 0]).unwrap();
    let var = efi.read("Empty", ST_VENDOR_GUID).unwrap().unwrap();
    assert!(var.data.is_empty());

    std::fs::write(var_file(&efi, "Big"), vec![0u8; MAX_VARIABLE_BYTES + 1]).unwrap();
    let err = efi.read("Big", ST_VENDOR_GUID).unwrap_err();
    assert!(matches!(err, EfiError::TooLarge { .. }), "{err}");
    std::fs::write(var_file(&efi, "Max"), vec![0u8; MAX_VARIABLE_BYTES]).unwrap();
    assert!(efi.read("Max", ST_VENDOR_GUID).unwrap().is_some());
}

#[test]
fn read_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path());
    // A directory where the variable file should be: reading fails with EISDIR.
    std::fs::create_dir(var_file(&efi, "Dir")).unwrap();
    let err = efi.read("Dir", ST_VENDOR_GUID).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("reading ") && msg.contains("Dir-f401f2c1"),
        "{msg}"
    );
    assert!(msg.contains("directory"), "{msg}");
}

#[test]
fn write_read_remove_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path());
    efi.write(
        "STHostName",
        ST_VENDOR_GUID,
        ATTR_NV_BS_RT,
        b"host.example.org",
    )
    .unwrap();
    let raw = std::fs::read(var_file(&efi, "STHostName")).unwrap();
    assert_eq!(&raw[..4], &[7, 0, 0, 0]);
    assert_eq!(&raw[4..], b"host.example.org");

    // A shorter value replaces the longer one completely.
    efi.write("STHostName", ST_VENDOR_GUID, 0x27, b"h").unwrap();
    assert_eq!(
        efi.read("STHostName", ST_VENDOR_GUID).unwrap(),
        Some(Variable {
            attributes: 0x27,
            data: b"h".to_vec()
        })
    );

    assert!(efi.remove("STHostName", ST_VENDOR_GUID).unwrap());
    assert!(!efi.remove("STHostName", ST_VENDOR_GUID).unwrap());
    assert_eq!(efi.read("STHostName", ST_VENDOR_GUID).unwrap(), None);
}

#[test]
fn write_rejects_oversized_values_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path());
    let err = efi
        .write("Big", ST_VENDOR_GUID, 7, &vec![0; MAX_VARIABLE_BYTES - 3])
        .unwrap_err();
    assert!(matches!(err, EfiError::TooLarge { .. }), "{err}");
    assert!(!var_file(&efi, "Big").exists());
    efi.write("Max", ST_VENDOR_GUID, 7, &vec![0; MAX_VARIABLE_BYTES - 4])
        .unwrap();

    assert!(matches!(
        efi.write("a/b", ST_VENDOR_GUID, 7, b""),
        Err(EfiError::InvalidName { .. })
    ));
    assert!(matches!(
        efi.write("A", "not-a-guid", 7, b""),
        Err(EfiError::InvalidGuid { .. })
    ));
    assert!(matches!(
        efi.remove("A", "f401f2c1-b005-4be0-8cee-f2e5945bcbe"),
        Err(EfiError::InvalidGuid { .. })
    ));
}

#[test]
fn write_into_missing_directory_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let efi = Efivarfs::at(dir.path().join("not-mounted"));
    let err = efi.write("X", ST_VENDOR_GUID, 7, b"x").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("opening ") && msg.contains("not-mounted/X-f401f2c1"),
        "{msg}"
    );
}
