//! Bad input: every case gives a clear message naming the file or store and the fix, exits
//! non-zero, and overwrites nothing.
mod ca_support;

use ca_support::{tool, Sandbox};

const LOADING_COMMANDS: [&[&str]; 4] = [
    &["ca", "show"],
    &["ca", "verify"],
    &["ca", "install", "--store", "nss", "--dry-run"],
    &["ca", "uninstall", "--store", "nss", "--dry-run"],
];

#[test]
fn missing_ca_says_run_init() {
    let sandbox = Sandbox::new();
    for args in LOADING_COMMANDS {
        sandbox
            .run(args)
            .fails()
            .says(&format!("no CA in {}", sandbox.ca_dir.display()))
            .says("discord-mitm-ca.pem does not exist")
            .says(&format!(
                "fix: run `discord-mitm ca init --ca-dir {}`",
                sandbox.ca_dir.display()
            ));
    }
    assert!(
        !sandbox.ca_dir.exists(),
        "loading must not create the CA dir"
    );
}

#[test]
fn corrupt_certificate_is_named_and_left_alone() {
    let sandbox = Sandbox::with_ca();
    for garbage in [
        &b"not a certificate at all"[..],
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        std::fs::write(sandbox.ca_pem(), garbage).unwrap();
        for args in LOADING_COMMANDS {
            let run = sandbox.run(args).fails();
            run.says(&sandbox.ca_pem().display().to_string())
                .says("fix: ");
            assert!(
                run.all().contains("no PEM certificate")
                    || run.all().contains("not a valid X.509 certificate"),
                "{}",
                run.all()
            );
            assert!(!run.all().contains("panicked"), "{}", run.all());
        }
        assert_eq!(std::fs::read(sandbox.ca_pem()).unwrap(), garbage);
    }
}

#[test]
fn non_ca_certificate_is_refused() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(&sandbox.ca_dir).unwrap();
    tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=just a leaf",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ],
        &[
            sandbox.ca_key().as_os_str(),
            "-out".as_ref(),
            sandbox.ca_pem().as_os_str(),
        ],
    );
    for args in LOADING_COMMANDS {
        sandbox
            .run(args)
            .fails()
            .says("discord-mitm-ca.pem: not a CA certificate (basicConstraints CA:TRUE is missing)")
            .says("fix: point --ca-dir at a directory made by `discord-mitm ca init`");
    }
}

#[test]
fn key_that_does_not_match_is_refused_where_the_key_is_used() {
    let sandbox = Sandbox::with_ca();
    let other = Sandbox::with_ca();
    std::fs::copy(other.ca_key(), sandbox.ca_key()).unwrap();
    sandbox
        .run(&["ca", "verify"])
        .fails()
        .says(&format!(
            "{}: this key does not belong to the certificate",
            sandbox.ca_key().display()
        ))
        .says("fix: restore the key");
}

#[test]
fn corrupt_or_missing_key_is_named() {
    let sandbox = Sandbox::with_ca();
    std::fs::write(
        sandbox.ca_key(),
        "-----BEGIN PRIVATE KEY-----\nZm9v\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    sandbox
        .run(&["ca", "verify"])
        .fails()
        .says("discord-mitm-ca.key: not a usable PEM private key");
    std::fs::remove_file(sandbox.ca_key()).unwrap();
    sandbox
        .run(&["ca", "verify"])
        .fails()
        .says("discord-mitm-ca.key does not exist");
    sandbox
        .run(&["ca", "show"])
        .ok()
        .says("the key")
        .says("is missing");
}

#[test]
fn group_readable_key_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::with_ca();
    std::fs::set_permissions(sandbox.ca_key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let fix = format!("fix: chmod 600 {}", sandbox.ca_key().display());
    sandbox
        .run(&["ca", "show"])
        .ok()
        .says("is readable by group/others (mode 0644)")
        .says(&fix);
    sandbox
        .run(&["ca", "install", "--store", "macos", "--dry-run"])
        .ok()
        .says("readable by group/others");
    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .says("readable by group/others")
        .says(&fix);
    // Reporting never changes the file.
    let mode = std::fs::metadata(sandbox.ca_key())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn missing_certutil_names_the_package() {
    let mut sandbox = Sandbox::with_ca();
    let db = sandbox.home.join(".pki/nssdb");
    sandbox.make_nss_db(&db);
    let before = std::fs::read(db.join("cert9.db")).unwrap();
    // A PATH without NSS's tools (certutil lives in /usr/bin, which is left out).
    let empty = sandbox.dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    sandbox.path_env = Some(empty.display().to_string());
    sandbox
        .run(&["ca", "install", "--store", "nss"])
        .fails()
        .says(&format!("NSS database {}", db.display()))
        .says("`certutil` was not found on PATH")
        .says("`sudo apt install libnss3-tools` (Debian/Ubuntu)")
        .says("`sudo dnf install nss-tools` (Fedora/RHEL)");
    assert_eq!(std::fs::read(db.join("cert9.db")).unwrap(), before);
    sandbox
        .run(&["ca", "show"])
        .ok()
        .says("certutil")
        .says("libnss3-tools");
    sandbox
        .run(&["ca", "install", "--store", "nss", "--dry-run"])
        .ok()
        .says("certutil is not installed");
}

#[test]
fn unwritable_ca_dir_fails_cleanly() {
    let sandbox = Sandbox::new();
    let file = sandbox.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let ca_dir = file.join("ca");
    sandbox
        .run(&["ca", "init", "--ca-dir", ca_dir.to_str().unwrap()])
        .fails()
        .says(&format!("cannot create directory {}", ca_dir.display()));
}

#[test]
fn unknown_store_is_a_usage_error() {
    let sandbox = Sandbox::with_ca();
    let run = sandbox
        .run(&["ca", "install", "--store", "keychain"])
        .fails();
    run.says("invalid value 'keychain'").says("possible values");
}
