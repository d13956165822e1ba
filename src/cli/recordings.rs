//! `discord-mitm recordings list|show|stats`: arguments and dispatch.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::explore::diff::{Diff, Shapes};
use crate::explore::range::{rfc3339, TimeRange};
use crate::explore::report;
use crate::explore::search::{self, Query};
use crate::store::{Direction, Store};

/// Read what `record` stored.
#[derive(Debug, Clone, Args)]
pub struct RecordingsArgs {
    /// Recordings database directory.
    #[arg(long, global = true, default_value = "recordings")]
    pub recordings: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do with the recordings.
    #[command(subcommand)]
    pub action: RecordingsAction,
}

/// What to show.
#[derive(Debug, Clone, Subcommand)]
pub enum RecordingsAction {
    /// Exchanges and gateway sessions in time order.
    List {
        /// Only the last N.
        #[arg(long)]
        limit: Option<usize>,
        /// Which ones.
        #[command(flatten)]
        filters: SearchFilters,
        /// Only those holding this text (URL, headers, bodies, decoded frames; any case).
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
    },
    /// One exchange (ID), gateway session (gw:ID) or frame (gw:ID:send|receive:SEQ) in full.
    Show {
        /// Exchange id, gw:ID for a gateway session, gw:ID:DIRECTION:SEQ for one frame.
        id: String,
    },
    /// Counts, sizes, hosts and status classes.
    Stats,
    /// Full-text search over URLs, headers, bodies and decoded gateway frames; each hit names
    /// the exchange (ID) or frame (gw:ID:DIRECTION:SEQ) it was found in.
    Search {
        /// Text to find (any case); omit to list everything the filters match.
        text: Option<String>,
        /// Which exchanges and frames to look in.
        #[command(flatten)]
        filters: SearchFilters,
        /// Stop after N hits.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// What changed between two recordings (or two time ranges of one): routes and gateway
    /// events added and removed, and schema changes per route and event.
    Diff(DiffArgs),
}

/// Filters shared by `recordings search` and `recordings list`.
#[derive(Debug, Clone, Default, Args)]
pub struct SearchFilters {
    /// Only REST exchanges whose route template contains this (`/channels/{channel_id}/messages`).
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// Only gateway frames of this dispatch event (`MESSAGE_CREATE`) or opcode number.
    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,
    /// From this time on (RFC 3339, or µs since the epoch).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// JSON path condition on bodies and frame payloads, repeatable: `d.guilds[*].id=123`
    /// (equal), `d.content~hello` (contains), `d.nonce` (present).
    #[arg(long = "where", value_name = "PATH=VALUE")]
    pub paths: Vec<String>,
}

impl SearchFilters {
    /// The query these filters and `text` make.
    pub fn query(&self, text: Option<String>) -> anyhow::Result<Query> {
        Ok(Query::parse(
            text,
            self.route.clone(),
            self.event.clone(),
            self.since.as_deref(),
            self.until.as_deref(),
            &self.paths,
        )?)
    }
}

/// `recordings diff A B`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The older recordings database.
    pub a: PathBuf,
    /// The newer one (default: A again, for two time ranges of one recording).
    pub b: Option<PathBuf>,
    /// Only what A recorded from this time on (RFC 3339, or µs since the epoch).
    #[arg(long, value_name = "TIME")]
    pub a_since: Option<String>,
    /// Only what A recorded before this time.
    #[arg(long, value_name = "TIME")]
    pub a_until: Option<String>,
    /// Only what B recorded from this time on.
    #[arg(long, value_name = "TIME")]
    pub b_since: Option<String>,
    /// Only what B recorded before this time.
    #[arg(long, value_name = "TIME")]
    pub b_until: Option<String>,
}

/// Opens a recordings database for reading, with a clear error when there is none; while a
/// running `record` or `serve` holds it, reads go through that process.
pub fn open(dir: &std::path::Path) -> anyhow::Result<Store> {
    open_check(dir)?;
    Ok(Store::open_for_reading(dir)?)
}

/// Fails with a clear error when `dir` holds no recordings.
pub fn open_check(dir: &std::path::Path) -> anyhow::Result<()> {
    // The integrity mark outlives a lost database file: then opening says what happened.
    let was_used = ["conf", "db", crate::store::watermark::FILE]
        .iter()
        .any(|name| dir.join(name).exists());
    if !was_used {
        anyhow::bail!(
            "no recordings in {} (record some with `discord-mitm record --recordings {}`)",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Runs `recordings`.
pub fn run(args: RecordingsArgs) -> anyhow::Result<ExitCode> {
    if let RecordingsAction::Diff(diff) = &args.action {
        return run_diff(diff, args.json);
    }
    let store = open(&args.recordings)?;
    match args.action {
        RecordingsAction::List {
            limit,
            filters,
            text,
        } => {
            let query = filters.query(text)?;
            print!("{}", report::list(&store, limit, args.json, &query)?);
        }
        RecordingsAction::Stats => print!("{}", report::stats(&store, args.json)?),
        RecordingsAction::Search {
            text,
            filters,
            limit,
        } => run_search(&store, &filters.query(text)?, limit, args.json)?,
        RecordingsAction::Diff(_) => {}
        RecordingsAction::Show { id } => show(&store, &args.recordings, &id, args.json)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `recordings search`: one line (or JSON object) per hit, then a count on stderr.
fn run_search(store: &Store, query: &Query, limit: Option<u64>, json: bool) -> anyhow::Result<()> {
    let mut out = String::new();
    let mut shown = 0u64;
    let total = search::search(store, query, |hit| {
        if limit.is_some_and(|n| shown >= n) {
            return;
        }
        shown += 1;
        if json {
            out.push_str(&serde_json::to_string(&hit).unwrap_or_default());
            out.push('\n');
        } else {
            out.push_str(&format!(
                "{:<22} {}  {}  [{}] {}\n",
                hit.id, hit.at, hit.summary, hit.place, hit.snippet
            ));
        }
    })?;
    crate::store::stdio::write_stdout(out.as_bytes())?;
    eprintln!(
        "{total} hit(s){}",
        if shown < total {
            format!(", {shown} shown")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `recordings diff A [B]`.
fn run_diff(args: &DiffArgs, json: bool) -> anyhow::Result<ExitCode> {
    let a_range = TimeRange::parse(args.a_since.as_deref(), args.a_until.as_deref())?;
    let b_range = TimeRange::parse(args.b_since.as_deref(), args.b_until.as_deref())?;
    let b_path = args.b.clone().unwrap_or_else(|| args.a.clone());
    let a_store = open(&args.a)?;
    let same = std::fs::canonicalize(&args.a).ok() == std::fs::canonicalize(&b_path).ok();
    let b_store = if same { None } else { Some(open(&b_path)?) };
    let a = shapes(&a_store, &a_range)?;
    let b = shapes(b_store.as_ref().unwrap_or(&a_store), &b_range)?;
    let diff = Diff::new(
        side_name(&args.a, &a_range),
        &a,
        side_name(&b_path, &b_range),
        &b,
    );
    let text = if json {
        let mut text = serde_json::to_string_pretty(&diff)?;
        text.push('\n');
        text
    } else {
        diff.text()
    };
    crate::store::stdio::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// One side's route and event shapes, with a progress bar over its exchanges.
fn shapes(store: &Store, range: &TimeRange) -> anyhow::Result<Shapes> {
    let bar = super::progress::bar(0, "exchanges");
    let shapes = Shapes::from_store(store, range, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    Ok(shapes)
}

fn side_name(path: &Path, range: &TimeRange) -> String {
    let mut name = path.display().to_string();
    if let Some(since) = range.since_us {
        name.push_str(&format!(" since {}", rfc3339(since)));
    }
    if let Some(until) = range.until_us {
        name.push_str(&format!(" until {}", rfc3339(until)));
    }
    name
}

/// `recordings show ID|gw:ID|gw:ID:DIRECTION:SEQ`.
fn show(store: &Store, dir: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    if let Some(frame) = id.strip_prefix("gw:").filter(|rest| rest.contains(':')) {
        return show_frame(store, id, frame, json);
    }
    if let Some(session_id) = id
        .strip_prefix("gw:")
        .or_else(|| id.strip_prefix("gateway:"))
    {
        let session_id: u64 = session_id
            .parse()
            .with_context(|| format!("`{id}` is not gw:NUMBER"))?;
        let session = store
            .session(session_id)?
            .with_context(|| format!("no gateway session {session_id} in {}", dir.display()))?;
        let frames = store.frames(session_id)?;
        if json {
            println!("{}", report::session_json(&session, &frames));
        } else {
            print!("{}", report::session_text(&session, &frames));
        }
    } else {
        let exchange_id: u64 = id
            .parse()
            .with_context(|| format!("`{id}` is not an exchange id (or gw:ID)"))?;
        let exchange = store
            .exchange(exchange_id)?
            .with_context(|| format!("no exchange {exchange_id} in {}", dir.display()))?;
        if json {
            println!("{}", report::exchange_json(&exchange));
        } else {
            print!("{}", report::exchange_text(&exchange));
        }
    }
    Ok(())
}

/// One frame, `gw:SESSION:send|receive:SEQ`, as JSON (its decoded payload pretty-printed).
fn show_frame(store: &Store, id: &str, rest: &str, json: bool) -> anyhow::Result<()> {
    let bad = || format!("`{id}` is not gw:SESSION:send|receive:SEQ");
    let mut parts = rest.splitn(3, ':');
    let (Some(session), Some(direction), Some(seq)) = (parts.next(), parts.next(), parts.next())
    else {
        anyhow::bail!(bad());
    };
    let session: u64 = session.parse().with_context(bad)?;
    let seq: u64 = seq.parse().with_context(bad)?;
    let direction = match direction {
        "send" => Direction::ClientToServer,
        "receive" => Direction::ServerToClient,
        _ => anyhow::bail!(bad()),
    };
    let frame = store
        .frames_in(session, direction)
        .find(|f| f.as_ref().map_or(true, |f| f.seq == seq))
        .transpose()?
        .with_context(|| format!("no frame {id}"))?;
    let payload = frame
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    let value = serde_json::json!({
        "id": id,
        "at": rfc3339(frame.at_us),
        "direction": direction.har_type(),
        "seq": frame.seq,
        "raw_size": frame.raw_size,
        "op": frame.op,
        "t": frame.t,
        "s": frame.s,
        "payload": payload,
        "decode_error": frame.decode_error,
        "redacted": frame.redacted,
    });
    let text = if json {
        value.to_string()
    } else {
        serde_json::to_string_pretty(&value)?
    };
    println!("{text}");
    Ok(())
}
