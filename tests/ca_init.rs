//! `ca init` and `ca show` through the built binary, checked with openssl.
mod ca_support;

use ca_support::{tool, Sandbox};

fn openssl_text(sandbox: &Sandbox) -> String {
    tool(
        "openssl",
        &["x509", "-noout", "-text", "-in"],
        &[sandbox.ca_pem().as_os_str()],
    )
}

#[test]
fn init_makes_a_ten_year_pathlen0_ca_that_openssl_accepts() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["ca", "init"]).ok();
    run.says("created a new root CA")
        .says("discord-mitm-ca.key (mode 0600)");

    let text = openssl_text(&sandbox);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert!(
        text.contains("Subject: O = discord-mitm, CN = discord-mitm CA "),
        "{text}"
    );

    // 10 years: openssl's -checkend agrees it is valid in 9.9 years and expired in 10.1.
    let pem = sandbox.ca_pem();
    let in_years = |years: f64| {
        let secs = ((years * 365.25 * 86400.0) as u64).to_string();
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-checkend", &secs, "-in"])
            .arg(&pem)
            .status()
            .unwrap()
            .success()
    };
    assert!(in_years(9.9), "CA must still be valid in 9.9 years");
    assert!(!in_years(10.1), "CA must expire after about 10 years");

    // Self-signed and usable as a trust anchor.
    let verify = tool(
        "openssl",
        &["verify", "-CAfile"],
        &[pem.as_os_str(), pem.as_os_str()],
    );
    assert!(verify.contains(": OK"), "{verify}");

    // The DER copy is the same certificate.
    let der = std::fs::read(sandbox.ca_cer()).unwrap();
    assert_eq!(der, ca_support::der_of(&pem));
    let from_der = tool(
        "openssl",
        &["x509", "-inform", "DER", "-noout", "-subject", "-in"],
        &[sandbox.ca_cer().as_os_str()],
    );
    assert!(from_der.contains("discord-mitm CA"), "{from_der}");
}

#[test]
fn key_is_0600_and_matches_the_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::with_ca();
    let mode = std::fs::metadata(sandbox.ca_key())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    let from_key = tool(
        "openssl",
        &["pkey", "-pubout", "-in"],
        &[sandbox.ca_key().as_os_str()],
    );
    let from_cert = tool(
        "openssl",
        &["x509", "-noout", "-pubkey", "-in"],
        &[sandbox.ca_pem().as_os_str()],
    );
    assert_eq!(from_key, from_cert);
}

#[test]
fn each_install_gets_a_unique_subject() {
    let a = Sandbox::with_ca();
    let b = Sandbox::with_ca();
    assert_ne!(a.ca_common_name(), b.ca_common_name());
}

#[test]
fn init_never_overwrites_says_already_present_and_force_replaces() {
    let sandbox = Sandbox::with_ca();
    let before_pem = std::fs::read(sandbox.ca_pem()).unwrap();
    let before_key = std::fs::read(sandbox.ca_key()).unwrap();
    // A second `ca init` on a complete CA changes nothing and says so.
    sandbox
        .run(&["ca", "init"])
        .ok()
        .says("CA already present in")
        .says("nothing changed")
        .says("ca init --force");
    assert_eq!(std::fs::read(sandbox.ca_pem()).unwrap(), before_pem);
    assert_eq!(std::fs::read(sandbox.ca_key()).unwrap(), before_key);

    sandbox
        .run(&["ca", "init", "--force"])
        .ok()
        .says("replaced CA");
    assert_ne!(std::fs::read(sandbox.ca_pem()).unwrap(), before_pem);
    assert_ne!(std::fs::read(sandbox.ca_key()).unwrap(), before_key);
}

#[test]
fn a_lone_leftover_key_also_blocks_init() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(&sandbox.ca_dir).unwrap();
    std::fs::write(sandbox.ca_key(), "precious").unwrap();
    // Refused, and said precisely: which half is there, which is missing, and the fix with the
    // CA directory the user gave.
    let flag = format!("--ca-dir {}", sandbox.ca_dir.display());
    sandbox
        .run(&["ca", "init", "--ca-dir", sandbox.ca_dir.to_str().unwrap()])
        .fails()
        .says("half a CA")
        .says("discord-mitm-ca.key is there but")
        .says("discord-mitm-ca.pem is not")
        .says(&format!("ca init --force {flag}"));
    assert_eq!(
        std::fs::read_to_string(sandbox.ca_key()).unwrap(),
        "precious"
    );
}

#[test]
fn a_certificate_without_its_key_is_explained() {
    let sandbox = Sandbox::with_ca();
    std::fs::remove_file(sandbox.ca_key()).unwrap();
    let before = std::fs::read(sandbox.ca_pem()).unwrap();
    sandbox
        .run(&["ca", "init"])
        .fails()
        .says("half a CA")
        .says("without its key no certificate can be signed")
        .says("restore the key");
    assert_eq!(std::fs::read(sandbox.ca_pem()).unwrap(), before);
}

#[test]
fn init_mends_what_it_can_without_changing_the_ca() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::with_ca();
    let pem = std::fs::read(sandbox.ca_pem()).unwrap();
    let key = std::fs::read(sandbox.ca_key()).unwrap();
    let der = std::fs::read(sandbox.ca_cer()).unwrap();
    // A key others can read, a lost DER copy.
    std::fs::set_permissions(sandbox.ca_key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(sandbox.ca_cer()).unwrap();
    sandbox
        .run(&["ca", "init"])
        .ok()
        .says("CA already present in")
        .says("repaired: the key")
        .says("it is now 0600")
        .says("repaired: wrote the missing DER copy")
        .says("the CA itself is unchanged");
    let mode = std::fs::metadata(sandbox.ca_key())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read(sandbox.ca_cer()).unwrap(), der);
    // A lost PEM certificate comes back from the DER copy.
    std::fs::remove_file(sandbox.ca_pem()).unwrap();
    sandbox
        .run(&["ca", "init"])
        .ok()
        .says("repaired: wrote the missing certificate");
    assert_eq!(std::fs::read(sandbox.ca_pem()).unwrap(), pem);
    assert_eq!(std::fs::read(sandbox.ca_key()).unwrap(), key);
    // Nothing left to mend.
    sandbox.run(&["ca", "init"]).ok().says("nothing changed");
}

#[test]
fn show_prints_subject_fingerprint_validity_paths_and_stores() {
    let sandbox = Sandbox::with_ca();
    let run = sandbox.run(&["ca", "show"]).ok();
    let fingerprint = tool(
        "openssl",
        &["x509", "-noout", "-fingerprint", "-sha256", "-in"],
        &[sandbox.ca_pem().as_os_str()],
    );
    let fingerprint = fingerprint.trim().rsplit('=').next().unwrap().to_string();
    run.says(&format!("sha256:       {fingerprint}"))
        .says(&format!(
            "subject:      O=discord-mitm, CN={}",
            sandbox.ca_common_name()
        ))
        .says("valid until:  20")
        .says(&sandbox.ca_key().display().to_string())
        .says("trust stores:")
        .says("macOS System keychain")
        .says("Windows Trusted Root");
}

#[test]
fn ca_dir_flag_overrides_the_environment() {
    let sandbox = Sandbox::new();
    let other = sandbox.dir.path().join("elsewhere");
    sandbox
        .run(&["ca", "init", "--ca-dir", other.to_str().unwrap()])
        .ok();
    assert!(other.join("discord-mitm-ca.pem").is_file());
    assert!(!sandbox.ca_pem().exists());
}

#[test]
fn every_ca_command_has_help() {
    let sandbox = Sandbox::new();
    for cmd in [
        vec!["ca"],
        vec!["ca", "init"],
        vec!["ca", "show"],
        vec!["ca", "install"],
        vec!["ca", "uninstall"],
        vec!["ca", "verify"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let run = sandbox.run(&args).ok();
        run.says("Usage: discord-mitm ca");
    }
    sandbox
        .run(&["ca", "install", "--help"])
        .ok()
        .says("--dry-run")
        .says("- system:")
        .says("- nss:")
        .says("- firefox:")
        .says("- macos:")
        .says("- windows:")
        .says("- all:");
    sandbox.run(&["--version"]).ok().says("discord-mitm ");
}
