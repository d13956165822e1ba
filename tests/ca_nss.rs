//! `ca install/uninstall/verify --store nss|firefox` against real NSS databases in a temp HOME,
//! checked with NSS's own certutil (listing) and tstclnt (a real NSS TLS handshake, inside `ca verify`).
mod ca_support;

use ca_support::Sandbox;

#[test]
fn nss_install_lists_trusts_and_uninstall_removes() {
    let sandbox = Sandbox::with_ca();
    let db = sandbox.home.join(".pki/nssdb");
    sandbox.make_nss_db(&db);
    let nickname = sandbox.ca_common_name();

    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .fails()
        .says("UNTRUSTED   NSS database")
        .says("SEC_ERROR_UNKNOWN_ISSUER");

    sandbox
        .run(&["ca", "install", "--store", "nss"])
        .ok()
        .says(&format!(
            "certutil -A -d sql:{} -t C,, -n '{nickname}'",
            db.display()
        ))
        .says("ok: installed");
    let listing = sandbox.nss_listing(&db);
    let line = listing
        .lines()
        .find(|l| l.starts_with(&nickname))
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(line.split_whitespace().last(), Some("C,,"), "{line}");

    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .ok()
        .says("trusted     NSS database")
        .says("tstclnt")
        .says("every checked store trusts the CA");
    sandbox
        .run(&["ca", "show"])
        .ok()
        .says("(Chromium, Electron apps, Discord desktop): installed (trust C,,)");

    // Installing twice is harmless and leaves one entry.
    sandbox.run(&["ca", "install", "--store", "nss"]).ok();
    assert_eq!(sandbox.nss_listing(&db).matches(&nickname).count(), 1);

    sandbox
        .run(&["ca", "uninstall", "--store", "nss"])
        .ok()
        .says("ok: removed");
    assert!(!sandbox.nss_listing(&db).contains(&nickname));
    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .fails()
        .says("UNTRUSTED");
    sandbox
        .run(&["ca", "uninstall", "--store", "nss"])
        .ok()
        .says("nothing to remove");
}

#[test]
fn nss_install_creates_the_chromium_db_when_missing_and_covers_snap_chromium() {
    let sandbox = Sandbox::with_ca();
    let snap = sandbox.home.join("snap/chromium/current/.pki/nssdb");
    sandbox.make_nss_db(&snap);
    let nickname = sandbox.ca_common_name();
    sandbox
        .run(&["ca", "install", "--store", "nss"])
        .ok()
        .says("certutil -N -d sql:");
    let main = sandbox.home.join(".pki/nssdb");
    assert!(main.join("cert9.db").is_file());
    assert!(sandbox.nss_listing(&main).contains(&nickname));
    assert!(sandbox.nss_listing(&snap).contains(&nickname));
    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .ok()
        .says("snap Chromium");
    sandbox.run(&["ca", "uninstall", "--store", "nss"]).ok();
    assert!(!sandbox.nss_listing(&main).contains(&nickname));
    assert!(!sandbox.nss_listing(&snap).contains(&nickname));
}

#[test]
fn firefox_profiles_from_profiles_ini_including_snap_and_flatpak() {
    let sandbox = Sandbox::with_ca();
    let nickname = sandbox.ca_common_name();
    let classic = sandbox.home.join(".mozilla/firefox");
    let snap = sandbox.home.join("snap/firefox/common/.mozilla/firefox");
    let flatpak = sandbox
        .home
        .join(".var/app/org.mozilla.firefox/.mozilla/firefox");
    let absolute = sandbox.dir.path().join("elsewhere/work-profile");
    let profiles = [
        classic.join("abcd.default-release"),
        absolute.clone(),
        snap.join("snp1.default"),
        flatpak.join("flt1.default"),
    ];
    for profile in &profiles {
        sandbox.make_nss_db(profile);
    }
    std::fs::write(
        classic.join("profiles.ini"),
        format!(
            "[Profile0]\nName=default-release\nIsRelative=1\nPath=abcd.default-release\n\n\
             [Profile1]\nName=work\nIsRelative=0\nPath={}\n\n[General]\nVersion=2\n",
            absolute.display()
        ),
    )
    .unwrap();
    std::fs::write(
        snap.join("profiles.ini"),
        "[Profile0]\nName=default\nIsRelative=1\nPath=snp1.default\n",
    )
    .unwrap();
    std::fs::write(
        flatpak.join("profiles.ini"),
        "[Profile0]\nName=default\nIsRelative=1\nPath=flt1.default\n",
    )
    .unwrap();

    sandbox
        .run(&["ca", "verify", "--store", "firefox"])
        .fails()
        .says("UNTRUSTED   NSS database");
    let run = sandbox.run(&["ca", "install", "--store", "firefox"]).ok();
    for profile in &profiles {
        run.says(&format!(
            "NSS database {} (Firefox profile",
            profile.display()
        ));
        assert!(
            sandbox.nss_listing(profile).contains(&nickname),
            "{}",
            profile.display()
        );
    }
    let verify = sandbox.run(&["ca", "verify", "--store", "firefox"]).ok();
    assert_eq!(
        verify.stdout.matches("trusted     NSS database").count(),
        4,
        "{}",
        verify.stdout
    );
    sandbox.run(&["ca", "uninstall", "--store", "firefox"]).ok();
    for profile in &profiles {
        assert!(
            !sandbox.nss_listing(profile).contains(&nickname),
            "{}",
            profile.display()
        );
    }
}

#[test]
fn firefox_without_profiles_is_a_clear_failure_when_asked_for() {
    let sandbox = Sandbox::with_ca();
    sandbox
        .run(&["ca", "install", "--store", "firefox"])
        .fails()
        .says("no Firefox profile found")
        .says("start Firefox once");
}

#[test]
fn verify_without_tstclnt_falls_back_to_certutil_trust_bits() {
    let mut sandbox = Sandbox::with_ca();
    let db = sandbox.home.join(".pki/nssdb");
    sandbox.make_nss_db(&db);
    let nickname = sandbox.ca_common_name();
    // Present but not trusted for TLS: both NSS checks must say no.
    ca_support::tool(
        "certutil",
        &[
            "-A",
            "-d",
            &format!("sql:{}", db.display()),
            "-t",
            ",,",
            "-n",
            &nickname,
            "-i",
        ],
        &[sandbox.ca_pem().as_os_str()],
    );
    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .fails()
        .says("UNTRUSTED")
        .says("tstclnt");
    sandbox
        .run(&["ca", "show"])
        .ok()
        .says("present but not trusted for TLS servers");

    // PATH with certutil but without tstclnt.
    let bin = sandbox.dir.path().join("only-certutil");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(ca_support::find("certutil"), bin.join("certutil")).unwrap();
    sandbox.path_env = Some(bin.display().to_string());
    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .fails()
        .says("UNTRUSTED")
        .says("`certutil -V` says");

    sandbox.run(&["ca", "install", "--store", "nss"]).ok();
    sandbox
        .run(&["ca", "verify", "--store", "nss"])
        .ok()
        .says("`certutil -V -u L` says the CA is trusted for TLS");
}

#[test]
fn under_sudo_the_users_nss_databases_are_left_to_the_user() {
    if !ca_support::is_root() {
        eprintln!("skipped: needs root to look like a sudo session");
        return;
    }
    let sandbox = Sandbox::with_ca();
    let db = sandbox.home.join(".pki/nssdb");
    sandbox.make_nss_db(&db);
    let before = std::fs::read(db.join("cert9.db")).unwrap();
    let run: ca_support::Run = sandbox
        .command(&["ca", "install", "--store", "nss"])
        .env("SUDO_USER", "alice")
        .output()
        .unwrap()
        .into();
    run.fails()
        .says("running as root through sudo: alice's NSS databases would end up owned by root")
        .says("as alice, without sudo");
    assert_eq!(std::fs::read(db.join("cert9.db")).unwrap(), before);
    // With every store, NSS is skipped (not failed) and the rest still runs.
    let run: ca_support::Run = sandbox
        .command(&["ca", "install", "--dry-run"])
        .env("SUDO_USER", "alice")
        .output()
        .unwrap()
        .into();
    run.says("skipped: running as root through sudo");
}
