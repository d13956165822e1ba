//! The Linux system store: the Debian path for real (update-ca-certificates in a temp root), the
//! other distributions' plans, and — only in CI or on opt-in — the machine's own store.
mod ca_support;

use ca_support::{bundle_ders, der_of, is_root, Sandbox};

#[test]
fn debian_store_in_a_temp_root_install_verify_uninstall() {
    let mut sandbox = Sandbox::with_ca();
    let root = sandbox.make_debian_root();
    let bundle = root.join("etc/ssl/certs/ca-certificates.crt");
    let ours = der_of(&sandbox.ca_pem());
    assert!(!bundle_ders(&bundle).contains(&ours));

    sandbox
        .run(&["ca", "verify", "--store", "system"])
        .fails()
        .says("UNTRUSTED   system store (Debian/Ubuntu: update-ca-certificates")
        .says("UnknownIssuer")
        // The hint repeats the CA directory in use.
        .says(&format!(
            "run `discord-mitm ca install --ca-dir {}`",
            sandbox.ca_dir.display()
        ));
    sandbox
        .run(&["ca", "show"])
        .ok()
        .says("update-ca-certificates; root")
        .says("): not installed");

    let run = sandbox.run(&["ca", "install", "--store", "system"]).ok();
    run.says("run    update-ca-certificates --certsconf")
        .says("ok: installed");
    let anchors: Vec<_> = std::fs::read_dir(root.join("usr/local/share/ca-certificates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(anchors.len(), 1, "{anchors:?}");
    assert!(
        anchors[0].starts_with("discord-mitm-") && anchors[0].ends_with(".crt"),
        "{anchors:?}"
    );
    let ders = bundle_ders(&bundle);
    assert!(ders.contains(&ours), "bundle lacks our CA");
    assert_eq!(ders.len(), 2, "the unrelated CA must stay");
    // openssl (a third-party verifier) agrees the bundle now vouches for the CA.
    let check = ca_support::tool(
        "openssl",
        &["verify", "-CAfile"],
        &[bundle.as_os_str(), sandbox.ca_pem().as_os_str()],
    );
    assert!(check.contains(": OK"), "{check}");

    sandbox
        .run(&["ca", "verify", "--store", "system"])
        .ok()
        .says("trusted     system store")
        .says("ca-certificates.crt accepts the leaf");
    sandbox.run(&["ca", "show"]).ok().says("): installed (");
    // A second install finds the CA in place and changes nothing.
    let bundle_before = std::fs::read(&bundle).unwrap();
    sandbox
        .run(&["ca", "install", "--store", "system"])
        .ok()
        .says("ok: already present (nothing changed)");
    assert_eq!(std::fs::read(&bundle).unwrap(), bundle_before);

    sandbox
        .run(&["ca", "uninstall", "--store", "system"])
        .ok()
        .says("update-ca-certificates --fresh")
        .says("ok: removed");
    sandbox
        .run(&["ca", "uninstall", "--store", "system"])
        .ok()
        .says("ok: not present (nothing to remove)");
    assert!(
        std::fs::read_dir(root.join("usr/local/share/ca-certificates"))
            .unwrap()
            .next()
            .is_none()
    );
    let ders = bundle_ders(&bundle);
    assert!(!ders.contains(&ours));
    assert_eq!(ders.len(), 1);
    let dangling: Vec<_> = std::fs::read_dir(root.join("etc/ssl/certs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_symlink() && !p.exists())
        .collect();
    assert!(dangling.is_empty(), "dangling symlinks left: {dangling:?}");
    sandbox
        .run(&["ca", "verify", "--store", "system"])
        .fails()
        .says("UNTRUSTED");
}

#[test]
fn without_root_rights_the_system_store_says_use_sudo_and_changes_nothing() {
    let mut sandbox = Sandbox::with_ca();
    let root = sandbox.make_debian_root();
    let before = std::fs::read(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    let mut cmd = sandbox.command(&["ca", "install", "--store", "system"]);
    if is_root() {
        // Drop to nobody for this one run; everything it must read is world-readable.
        use std::os::unix::fs::PermissionsExt;
        let mut dir = sandbox.ca_dir.clone();
        while dir.pop() {
            if dir == std::env::temp_dir() || dir.as_os_str().is_empty() {
                break;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&sandbox.ca_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    } else {
        use std::os::unix::fs::PermissionsExt;
        let anchors = root.join("usr/local/share/ca-certificates");
        std::fs::set_permissions(&anchors, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let run: ca_support::Run = cmd.output().unwrap().into();
    let run = run.fails();
    run.says("FAILED: cannot write")
        .says("Permission denied")
        .says("needs root: run `sudo discord-mitm ca install --store system --ca-dir");
    assert_eq!(
        std::fs::read(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap(),
        before
    );
    assert!(
        std::fs::read_dir(root.join("usr/local/share/ca-certificates"))
            .unwrap()
            .next()
            .is_none()
    );
}

fn fake_root(sandbox: &mut Sandbox, os_release: &str) -> std::path::PathBuf {
    let root = sandbox.dir.path().join("distro-root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), os_release).unwrap();
    sandbox.system_root = Some(root.clone());
    root
}

#[test]
fn fedora_arch_and_opensuse_plans_are_chosen_from_os_release() {
    let cases = [
        (
            "ID=fedora\nPRETTY_NAME=\"Fedora Linux 41\"\n",
            "Fedora/RHEL: update-ca-trust",
            "etc/pki/ca-trust/source/anchors/discord-mitm-",
            ".pem",
            "run    update-ca-trust extract",
        ),
        (
            "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
            "Fedora/RHEL: update-ca-trust",
            "etc/pki/ca-trust/source/anchors/discord-mitm-",
            ".pem",
            "run    update-ca-trust extract",
        ),
        (
            "ID=arch\n",
            "Arch: trust",
            "etc/ca-certificates/trust-source/anchors/discord-mitm-",
            ".crt",
            "run    trust extract-compat",
        ),
        (
            "ID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n",
            "openSUSE: update-ca-certificates",
            "etc/pki/trust/anchors/discord-mitm-",
            ".pem",
            "run    update-ca-certificates\n",
        ),
        (
            "ID=ubuntu\nID_LIKE=debian\n",
            "Debian/Ubuntu: update-ca-certificates",
            "usr/local/share/ca-certificates/discord-mitm-",
            ".crt",
            "run    update-ca-certificates --certsconf",
        ),
    ];
    for (os_release, label, anchor, ext, command) in cases {
        let mut sandbox = Sandbox::with_ca();
        let root = fake_root(&mut sandbox, os_release);
        let install = sandbox
            .run(&["ca", "install", "--store", "system", "--dry-run"])
            .ok();
        install
            .says(label)
            .says(&format!("write  {}/{anchor}", root.display()))
            .says(&format!("{ext} (mode 0644, the CA certificate, PEM)"))
            .says(command);
        let uninstall = sandbox
            .run(&["ca", "uninstall", "--store", "system", "--dry-run"])
            .ok();
        uninstall
            .says(&format!("remove {}/{anchor}", root.display()))
            .says(label);
        // A dry run creates nothing.
        let files: Vec<_> = walk(&root);
        assert_eq!(files, vec![root.join("etc/os-release")], "{label}");
    }
}

#[test]
fn unknown_distribution_names_the_store_and_the_manual_fix() {
    let mut sandbox = Sandbox::with_ca();
    fake_root(&mut sandbox, "ID=plan9\nPRETTY_NAME=\"Plan 9\"\n");
    sandbox
        .run(&["ca", "install", "--store", "system"])
        .fails()
        .says("system store")
        .says("don't know how Plan 9 manages its trust store")
        .says("by hand");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Touches the machine's real store: only in CI (`CI=true`) or with `DISCORD_MITM_TEST_REAL_STORE=1`,
/// only as root, and it removes what it added.
#[test]
fn real_system_store_round_trip_in_ci_only() {
    let opted_in = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("DISCORD_MITM_TEST_REAL_STORE").is_ok_and(|v| v == "1");
    if !opted_in || !is_root() {
        eprintln!("skipped: set CI=true or DISCORD_MITM_TEST_REAL_STORE=1 and run as root to touch the real store");
        return;
    }
    let mut sandbox = Sandbox::with_ca();
    sandbox.system_root = Some("/".into());
    let ours = der_of(&sandbox.ca_pem());
    let bundle = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");

    /// Uninstalls even when an assertion fails half-way.
    struct Cleanup<'a>(&'a Sandbox);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(&["ca", "uninstall", "--store", "system"]);
        }
    }
    let cleanup = Cleanup(&sandbox);
    sandbox.run(&["ca", "install", "--store", "system"]).ok();
    assert!(
        bundle_ders(bundle).contains(&ours),
        "real bundle lacks the test CA"
    );
    sandbox
        .run(&["ca", "verify", "--store", "system"])
        .ok()
        .says("trusted     system store");
    drop(cleanup);

    assert!(
        !bundle_ders(bundle).contains(&ours),
        "real bundle still has the test CA"
    );
    let leftovers: Vec<_> = std::fs::read_dir("/usr/local/share/ca-certificates")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(&sandbox_id(&sandbox)))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn sandbox_id(sandbox: &Sandbox) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(der_of(&sandbox.ca_pem()))[..8])
}
