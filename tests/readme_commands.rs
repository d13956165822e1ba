//! The README's runnable commands, run against the built binary so the README stays true.
//!
//! Convention (also described in the README's "Developing" section): a fenced block whose info
//! string is `sh runnable` is run with `bash -e -o pipefail` and must exit 0; `sh runnable
//! background` starts a long-running command (`serve`, `record`, `gateway-proxy`), waits until
//! every `127.0.0.1:PORT` the block names accepts connections (or only `waits-for=ADDR`), and
//! stops it at the next heading. Blocks run in document order in one temporary directory
//! (`HOME` there too) holding a copy of `examples/`, with `discord-mitm` on `PATH`; the ports
//! the README uses are replaced by free loopback ports. Blocks without `runnable` are prose.
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ports the README's runnable blocks use; each is swapped for a free one per run.
const DOC_PORTS: &[u16] = &[3000, 7878, 8080, 8081, 8443];
const BLOCK_TIMEOUT: Duration = Duration::from_secs(120);
const PORT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Run,
    Background { waits_for: Option<String> },
}

/// One runnable fenced block.
#[derive(Debug, Clone)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    kind: Kind,
    /// Headings seen before the block: background processes stop when this changes.
    heading: usize,
    text: String,
}

/// The runnable blocks of a Markdown document.
fn runnable_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut heading = 0;
    let mut open: Option<(usize, Option<Kind>, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut open {
            Some((start, kind, text)) => {
                if line.trim_end() == "```" {
                    if let Some(kind) = kind.take() {
                        blocks.push(Block {
                            line: *start,
                            kind,
                            heading,
                            text: std::mem::take(text),
                        });
                    }
                    open = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            None => {
                if line.starts_with('#') {
                    heading += 1;
                } else if let Some(info) = line.strip_prefix("```") {
                    open = Some((index + 1, block_kind(info), String::new()));
                }
            }
        }
    }
    blocks
}

/// What a fence's info string asks for: `None` for a block that is not runnable.
fn block_kind(info: &str) -> Option<Kind> {
    let words: Vec<&str> = info.split_whitespace().collect();
    if !words.contains(&"runnable") {
        return None;
    }
    if !words.contains(&"background") {
        return Some(Kind::Run);
    }
    let waits_for = words
        .iter()
        .find_map(|word| word.strip_prefix("waits-for="))
        .map(str::to_string);
    Some(Kind::Background { waits_for })
}

/// Replaces every whole number in `text` that is a key of `ports` by its value.
fn remap_ports(text: &str, ports: &HashMap<u16, u16>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        match digits.parse::<u16>().ok().and_then(|port| ports.get(&port)) {
            Some(mapped) => out.push_str(&mapped.to_string()),
            None => out.push_str(digits),
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Every `127.0.0.1:PORT` address named in `text`.
fn loopback_addresses(text: &str) -> Vec<SocketAddr> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("127.0.0.1:") {
        let after = &rest[at + "127.0.0.1:".len()..];
        let port: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(port) = port.parse::<u16>() {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if !found.contains(&addr) {
                found.push(addr);
            }
        }
        rest = after;
    }
    found
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        if name == "node_modules" || name == "__pycache__" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A background block's process group, stopped with SIGTERM (then SIGKILL) when dropped.
struct Background {
    child: Child,
    /// The heading count of the block that started it.
    heading: usize,
    log: PathBuf,
}

impl Background {
    fn stop(&mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// Signals the whole process group (bash and what it started) with kill(1).
    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The temporary machine the blocks run on.
struct Sandbox {
    _root: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
    path: String,
    ports: HashMap<u16, u16>,
    logs: PathBuf,
}

impl Sandbox {
    fn new(repo: &Path) -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        let (work, home, bin, logs) = (
            root.path().join("work"),
            root.path().join("home"),
            root.path().join("bin"),
            root.path().join("logs"),
        );
        for dir in [&work, &home, &bin, &logs] {
            std::fs::create_dir_all(dir).expect("create sandbox directory");
        }
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_discord-mitm"), bin.join("discord-mitm"))
            .expect("link the binary");
        let examples = repo.join("examples");
        if examples.is_dir() {
            copy_dir(&examples, &work.join("examples"));
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let ports = DOC_PORTS.iter().map(|&port| (port, free_port())).collect();
        Sandbox {
            _root: root,
            work,
            home,
            path,
            ports,
            logs,
        }
    }

    fn command(&self, script: &str) -> Command {
        let mut command = Command::new("bash");
        command.args(["-e", "-o", "pipefail", "-c", script]);
        command.current_dir(&self.work).env_clear();
        command
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1")
            .env(
                "DISCORD_MITM_API",
                format!("127.0.0.1:{}", self.ports[&3000]),
            );
        command.stdin(Stdio::null());
        command
    }

    fn log_files(&self, line: usize) -> (PathBuf, std::fs::File, std::fs::File) {
        let path = self.logs.join(format!("block-{line}.log"));
        let out = std::fs::File::create(&path).expect("create log");
        let err = out.try_clone().expect("clone log");
        (path, out, err)
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn run_block(sandbox: &Sandbox, block: &Block, script: &str) -> Result<(), String> {
    let (log, out, err) = sandbox.log_files(block.line);
    let mut child = sandbox
        .command(script)
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start bash: {e}"))?;
    let deadline = Instant::now() + BLOCK_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            return Err(format!("exited with {status}; output:\n{}", tail(&log)));
        }
        if Instant::now() > deadline {
            let mut background = Background {
                child,
                heading: block.heading,
                log: log.clone(),
            };
            background.stop();
            return Err(format!(
                "still running after {BLOCK_TIMEOUT:?}; output:\n{}",
                tail(&log)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_background(
    sandbox: &Sandbox,
    block: &Block,
    script: &str,
    waits_for: &Option<String>,
) -> Result<Background, String> {
    let (log, out, err) = sandbox.log_files(block.line);
    let child = sandbox
        .command(script)
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start bash: {e}"))?;
    let mut background = Background {
        child,
        heading: block.heading,
        log,
    };
    let addresses = match waits_for {
        Some(addr) => loopback_addresses(&remap_ports(addr, &sandbox.ports)),
        None => loopback_addresses(script),
    };
    if addresses.is_empty() {
        return Err("a background block must name the 127.0.0.1:PORT it listens on".into());
    }
    let deadline = Instant::now() + PORT_TIMEOUT;
    for addr in addresses {
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = background.child.try_wait() {
                return Err(format!(
                    "exited with {status} before {addr} accepted connections; output:\n{}",
                    tail(&background.log)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{addr} did not accept connections within {PORT_TIMEOUT:?}; output:\n{}",
                    tail(&background.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(background)
}

/// Runs every runnable block of `markdown` in a fresh sandbox; the number run, or why one failed.
fn run_markdown(markdown: &str, repo: &Path) -> Result<usize, String> {
    let sandbox = Sandbox::new(repo);
    let mut running: Vec<Background> = Vec::new();
    let blocks = runnable_blocks(markdown);
    for block in &blocks {
        // Background processes belong to the heading they were started under (dropping stops them).
        running.retain(|background| background.heading == block.heading);
        let script = remap_ports(&block.text, &sandbox.ports);
        let outcome = match &block.kind {
            Kind::Run => run_block(&sandbox, block, &script),
            Kind::Background { waits_for } => {
                start_background(&sandbox, block, &script, waits_for).map(|bg| running.push(bg))
            }
        };
        if let Err(why) = outcome {
            return Err(format!(
                "the block at line {} failed:\n{}\n--- why ---\n{why}",
                block.line, block.text
            ));
        }
    }
    drop(running);
    Ok(blocks.len())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_runnable_command_in_the_readme_works() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("read README.md");
    let blocks = runnable_blocks(&readme);
    let background = blocks
        .iter()
        .filter(|b| matches!(b.kind, Kind::Background { .. }))
        .count();
    assert!(
        blocks.len() >= 8 && background >= 3,
        "the README lost its runnable blocks ({} found, {background} background)",
        blocks.len()
    );
    match run_markdown(&readme, &repo()) {
        Ok(count) => assert_eq!(count, blocks.len()),
        Err(why) => panic!("README.md: {why}"),
    }
}

#[test]
fn a_wrong_documented_command_fails_the_run() {
    let wrong_flag =
        "# Use\n\n```sh runnable\ndiscord-mitm --version\ndiscord-mitm serve --no-such-flag\n```\n";
    let why = run_markdown(wrong_flag, &repo()).expect_err("a wrong flag must fail");
    assert!(
        why.contains("line 3") && why.contains("--no-such-flag"),
        "{why}"
    );

    let dies = "```sh runnable background\ndiscord-mitm serve --api 127.0.0.1:3000 --fixture missing.json\n```\n";
    let why = run_markdown(dies, &repo()).expect_err("a server that cannot start must fail");
    assert!(why.contains("missing.json"), "{why}");

    let fine = "```sh runnable background\ndiscord-mitm serve --api 127.0.0.1:3000\n```\n\n\
                ```sh runnable\ncurl -sSf http://127.0.0.1:3000/api/v10/gateway\n```\n\n\
                ```sh\nthis block is prose and never runs\n```\n";
    assert_eq!(run_markdown(fine, &repo()), Ok(2));
}

#[test]
fn blocks_ports_and_headings_are_read_as_documented() {
    let doc = "# A\n```sh runnable\necho 3000 13000 127.0.0.1:8080\n```\n## B\n\
               ```sh runnable background waits-for=127.0.0.1:7878\nx\n```\n```text\nno\n```\n";
    let blocks = runnable_blocks(doc);
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[0].line, blocks[0].heading), (2, 1));
    assert_eq!(blocks[1].heading, 2);
    assert_eq!(
        blocks[1].kind,
        Kind::Background {
            waits_for: Some("127.0.0.1:7878".into())
        }
    );
    let ports = HashMap::from([(3000, 41000), (8080, 41001)]);
    assert_eq!(
        remap_ports(&blocks[0].text, &ports),
        "echo 41000 13000 127.0.0.1:41001\n"
    );
    assert_eq!(
        loopback_addresses("a 127.0.0.1:1 b 127.0.0.1:2 c 127.0.0.1:1"),
        vec![
            SocketAddr::from(([127, 0, 0, 1], 1)),
            SocketAddr::from(([127, 0, 0, 1], 2))
        ]
    );
}
