//! `--dry-run` prints the exact steps for every platform and changes nothing.
mod ca_support;

use ca_support::Sandbox;

fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(snapshot(&path));
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn macos_install_and_uninstall_commands() {
    let sandbox = Sandbox::with_ca();
    let pem = sandbox.ca_pem();
    let sha1 = ca_support::tool(
        "openssl",
        &["x509", "-noout", "-fingerprint", "-sha1", "-in"],
        &[pem.as_os_str()],
    );
    let sha1 = sha1.trim().rsplit('=').next().unwrap().replace(':', "");

    let install = sandbox
        .run(&["ca", "install", "--store", "macos", "--dry-run"])
        .ok();
    install
        .says("dry run: nothing is changed")
        .says("macOS System keychain")
        .says(&format!(
            "run    security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {}",
            pem.display()
        ))
        .says("run with sudo");
    let uninstall = sandbox
        .run(&["ca", "uninstall", "--store", "macos", "--dry-run"])
        .ok();
    uninstall
        .says(&format!(
            "run    security remove-trusted-cert -d {}",
            pem.display()
        ))
        .says(&format!(
            "run    security delete-certificate -Z {sha1} /Library/Keychains/System.keychain"
        ));
}

#[test]
fn windows_install_and_uninstall_commands() {
    let sandbox = Sandbox::with_ca();
    let serial = ca_support::tool(
        "openssl",
        &["x509", "-noout", "-serial", "-in"],
        &[sandbox.ca_pem().as_os_str()],
    );
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    sandbox
        .run(&["ca", "install", "--store", "windows", "--dry-run"])
        .ok()
        .says("Windows Trusted Root Certification Authorities")
        .says(&format!(
            "run    certutil -addstore -f Root {}",
            sandbox.ca_cer().display()
        ))
        .says("elevated");
    sandbox
        .run(&["ca", "uninstall", "--store", "windows", "--dry-run"])
        .ok()
        .says(&format!("run    certutil -delstore Root {serial}"));
}

#[test]
fn other_os_stores_refuse_a_real_run_and_point_at_dry_run() {
    let sandbox = Sandbox::with_ca();
    for store in ["macos", "windows"] {
        sandbox
            .run(&["ca", "install", "--store", store])
            .fails()
            .says("this store exists only on")
            .says("this machine runs Linux")
            .says("--dry-run");
    }
}

#[test]
fn all_stores_dry_run_lists_every_linux_store_and_changes_nothing() {
    let mut sandbox = Sandbox::with_ca();
    let root = sandbox.make_debian_root();
    let existing = sandbox.home.join(".pki/nssdb");
    sandbox.make_nss_db(&existing);
    let profile = sandbox.home.join(".mozilla/firefox/p1.default");
    sandbox.make_nss_db(&profile);
    std::fs::write(
        sandbox.home.join(".mozilla/firefox/profiles.ini"),
        "[Profile0]\nName=default\nIsRelative=1\nPath=p1.default\n",
    )
    .unwrap();
    let nickname = sandbox.ca_common_name();
    let before = (snapshot(sandbox.dir.path()), snapshot(&root));

    for op in ["install", "uninstall"] {
        let run = sandbox.run(&["ca", op, "--dry-run"]).ok();
        run.says("dry run: nothing is changed")
            .says("system store (Debian/Ubuntu");
        if op == "install" {
            run.says(&format!(
                "write  {}/usr/local/share/ca-certificates/discord-mitm-",
                root.display()
            ))
            .says(&format!(
                "run    certutil -A -d sql:{} -t C,, -n '{nickname}' -i {}",
                existing.display(),
                sandbox.ca_pem().display()
            ))
            .says(&format!(
                "run    certutil -A -d sql:{} -t C,, -n '{nickname}' -i {}",
                profile.display(),
                sandbox.ca_pem().display()
            ));
        } else {
            run.says("update-ca-certificates --fresh")
                .says("nothing to remove");
        }
    }
    assert!(
        before == (snapshot(sandbox.dir.path()), snapshot(&root)),
        "a dry run changed files"
    );
    assert!(!sandbox.nss_listing(&existing).contains(&nickname));
}

#[test]
fn dry_run_uninstall_shows_certutil_delete_for_an_installed_ca() {
    let sandbox = Sandbox::with_ca();
    let db = sandbox.home.join(".pki/nssdb");
    sandbox.make_nss_db(&db);
    sandbox.run(&["ca", "install", "--store", "nss"]).ok();
    let nickname = sandbox.ca_common_name();
    sandbox
        .run(&["ca", "uninstall", "--store", "nss", "--dry-run"])
        .ok()
        .says(&format!(
            "run    certutil -D -d sql:{} -n '{nickname}'",
            db.display()
        ));
    assert!(
        sandbox.nss_listing(&db).contains(&nickname),
        "dry run removed it"
    );
}
