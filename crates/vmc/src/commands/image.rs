//! Image commands: `vmc import`, `vmc images`, `vmc inspect`, `vmc rmi`, `vmc image …`.

use crate::format::{print_all, Template};
use crate::units::{ago, human_size, unix_now};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use vmc_image::{Change, Image, ImageSummary, ImportOptions, Store};
use vmc_runs::RunStore;
use vmc_runtime::text::{escape, to_json_pretty};

/// `vmc import SOURCE [--tag NAME[:TAG]] [--change INSTR]…`
#[derive(Args)]
pub struct ImportArgs {
    /// A `docker save` tarball, an OCI layout (directory or tar; DIR:REF picks one image of
    /// a layout holding several), or a root filesystem (directory, .tar, .tar.gz).
    pub source: PathBuf,
    /// Name the image NAME[:TAG] (default: the source's own name, else the file name).
    #[arg(short, long, value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Set config for a rootfs import, like `docker import --change`:
    /// CMD, ENTRYPOINT, ENV, WORKDIR or USER (e.g. 'CMD ["/bin/sh"]'). Repeatable.
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
}

/// `vmc images [--json] [-q]`
#[derive(Args)]
pub struct ImagesArgs {
    /// Print a JSON array instead of a table.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Print each image with a Go-template: '{{.Repository}}:{{.Tag}} {{.Size}}', '{{json .}}',
    /// 'table …' (fields: ID Repository Tag Digest CreatedAt CreatedSince Size).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Only print image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print full 64-digit image IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `vmc image inspect IMAGE`
#[derive(Args)]
pub struct InspectArgs {
    /// Print the details with a Go-template over the JSON's fields, matched without regard
    /// to case: '{{.Id}}', '{{json .Config.Cmd}}'.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Image name[:tag] or ID (prefix).
    pub image: String,
}

/// `vmc rmi [-f] IMAGE…`
#[derive(Args)]
pub struct RmiArgs {
    /// Remove an image by ID even when it has several names (all of them go); an image a
    /// running run uses is still kept.
    #[arg(short, long)]
    pub force: bool,
    /// Image names or IDs to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `vmc load [-i FILE]`
#[derive(Args)]
pub struct LoadArgs {
    /// A `docker save` tarball or an OCI archive (or layout directory) with one image or more;
    /// without it, the archive is read from standard input.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// `vmc tag SOURCE TARGET`
#[derive(Args)]
pub struct TagArgs {
    /// The image: name[:tag] or ID (prefix).
    pub source: String,
    /// The new name, NAME[:TAG] (tag default: latest).
    pub target: String,
}

/// `vmc image SUBCOMMAND`: the same commands grouped Docker-style, plus `prune`.
#[derive(Subcommand)]
pub enum ImageCommand {
    /// List images (same as `vmc images`).
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Import an image (same as `vmc import`).
    Import(ImportArgs),
    /// Show an image's details as JSON (same as `vmc inspect`).
    Inspect(InspectArgs),
    /// Remove images (same as `vmc rmi`).
    #[command(alias = "rmi")]
    Rm(RmiArgs),
    /// Give an image another name (same as `vmc tag`).
    Tag(TagArgs),
    /// Import every image of an archive (same as `vmc load`).
    Load(LoadArgs),
    /// Remove untagged images, unreferenced blobs, stale rootfs caches and temporary files.
    Prune,
}

/// Runs a `vmc image …` subcommand.
pub fn image(command: ImageCommand) -> Result<u8> {
    match command {
        ImageCommand::Ls(args) => images(args),
        ImageCommand::Import(args) => import(args),
        ImageCommand::Inspect(args) => inspect(args),
        ImageCommand::Rm(args) => rmi(args),
        ImageCommand::Tag(args) => tag(args),
        ImageCommand::Load(args) => load(args),
        ImageCommand::Prune => prune(),
    }
}

/// `vmc import`: prints the new image's ID like `docker import`.
pub fn import(args: ImportArgs) -> Result<u8> {
    let changes = args
        .change
        .iter()
        .map(|c| Change::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let store = Store::open_default()?;
    let (source, reference) = split_source_reference(&args.source);
    let options = ImportOptions {
        tag: args.tag,
        changes,
        reference,
    };
    let summary = store.import_with(&source, &options)?;
    let name = summary
        .names
        .first()
        .map(String::as_str)
        .unwrap_or("<none>");
    println!("Imported {} sha256:{}", escape(name), summary.id);
    Ok(0)
}

/// `DIR:REF` (an OCI layout and the reference name of one of its images, which may hold a
/// `:` itself) when `source` is not itself a path that exists but its part before a `:` is.
fn split_source_reference(source: &std::path::Path) -> (PathBuf, Option<String>) {
    let text = source.to_string_lossy();
    if !source.exists() {
        for (at, _) in text.match_indices(':') {
            let (path, reference) = (&text[..at], &text[at + 1..]);
            if !reference.is_empty() && std::path::Path::new(path).exists() {
                return (PathBuf::from(path), Some(reference.to_string()));
            }
        }
    }
    (source.to_path_buf(), None)
}

/// `vmc images`: a Docker-like table, IDs only, or JSON.
pub fn images(args: ImagesArgs) -> Result<u8> {
    let store = Store::open_default()?;
    let list = store.list()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", to_json_pretty(&list)?)?;
        return Ok(0);
    }
    let id = |s: &ImageSummary| {
        if args.no_trunc {
            format!("sha256:{}", s.id)
        } else {
            s.short_id().to_string()
        }
    };
    if args.quiet {
        for summary in &list {
            writeln!(out, "{}", id(summary))?;
        }
        return Ok(0);
    }
    let now = unix_now();
    if let Some(format) = &args.format {
        let template = Template::parse(format)?;
        let rows: Vec<Value> = list
            .iter()
            .flat_map(|summary| format_fields(summary, &id(summary), now))
            .collect();
        drop(out);
        print_all(&template, &rows)?;
        return Ok(0);
    }
    let mut rows = vec![[
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for summary in &list {
        let created = summary
            .created
            .as_deref()
            .and_then(vmc_image::timefmt::parse_rfc3339)
            .map(|t| ago(now - t))
            .unwrap_or_else(|| "N/A".into());
        let names: Vec<(String, String)> = if summary.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            summary
                .names
                .iter()
                .map(|n| split_name(&escape(n)))
                .collect()
        };
        for (repository, tag) in names {
            rows.push([
                repository,
                tag,
                id(summary),
                created.clone(),
                human_size(summary.size),
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("   ").trim_end())?;
    }
    Ok(0)
}

/// An image's `--format` fields under Docker's names: one set per name, as the table has a
/// row per name.
fn format_fields(summary: &ImageSummary, id: &str, now: i64) -> Vec<Value> {
    let created = summary
        .created
        .as_deref()
        .and_then(vmc_image::timefmt::parse_rfc3339);
    let names: Vec<(String, String)> = if summary.names.is_empty() {
        vec![("<none>".into(), "<none>".into())]
    } else {
        summary.names.iter().map(|n| split_name(n)).collect()
    };
    names
        .into_iter()
        .map(|(repository, tag)| {
            serde_json::json!({
                "ID": id,
                "Repository": repository,
                "Tag": tag,
                "Digest": format!("sha256:{}", summary.id),
                "CreatedAt": summary.created.clone().unwrap_or_else(|| "N/A".into()),
                "CreatedSince": created.map_or_else(|| "N/A".into(), |t| ago(now - t)),
                "Size": human_size(summary.size),
            })
        })
        .collect()
}

/// `vmc inspect`: the image's details as JSON, or through `--format`.
pub fn inspect(args: InspectArgs) -> Result<u8> {
    print_image(
        &Store::open_default()?.resolve(&args.image)?,
        args.format.as_deref(),
    )
}

/// Prints `image`'s details as JSON, or `format` applied to them.
pub fn print_image(image: &Image, format: Option<&str>) -> Result<u8> {
    match format {
        Some(format) => print_all(&Template::parse(format)?, &[serde_json::to_value(image)?])?,
        None => println!("{}", to_json_pretty(image)?),
    }
    Ok(0)
}

/// `vmc rmi`: prints `Untagged:` / `Deleted:` lines like Docker; fails if any image failed.
pub fn rmi(args: RmiArgs) -> Result<u8> {
    let store = Store::open_default()?;
    let runs = RunStore::open()?;
    let mut status = 0;
    for reference in &args.images {
        match store.remove_with(reference, args.force, |id| running_user_of(&runs, id)) {
            Ok(report) => {
                for name in &report.untagged {
                    println!("Untagged: {}", escape(name));
                }
                if let Some(id) = &report.deleted {
                    println!("Deleted: sha256:{id}");
                }
            }
            Err(err) => {
                eprintln!("vmc: {}", escape(&err.to_string()));
                status = vmc_runtime::outcome::EXIT_VMC_FAILED as u8;
            }
        }
    }
    Ok(status)
}

/// `vmc load`: every image of the archive, with `docker load`'s lines.
pub fn load(args: LoadArgs) -> Result<u8> {
    let store = Store::open_default()?;
    let loaded = match &args.input {
        Some(path) => store.load_archive(path)?,
        None if std::io::stdin().is_terminal() => anyhow::bail!(
            "vmc load reads an archive from standard input, which is a terminal: redirect one into it (vmc load < FILE), or give -i FILE"
        ),
        None => store.load_archive_from(&mut std::io::stdin().lock())?,
    };
    for summary in loaded {
        if summary.names.is_empty() {
            println!("Loaded image ID: sha256:{}", summary.id);
        }
        for name in &summary.names {
            println!("Loaded image: {}", escape(name));
        }
    }
    Ok(0)
}

/// `vmc tag`: silent on success, like `docker tag`.
pub fn tag(args: TagArgs) -> Result<u8> {
    Store::open_default()?.tag(&args.source, &args.target)?;
    Ok(0)
}

/// `vmc image prune`.
pub fn prune() -> Result<u8> {
    let runs = RunStore::open()?;
    let report = Store::open_default()?.prune(|id| running_user_of(&runs, id))?;
    for image in &report.images {
        println!("Deleted untagged image: {}", escape(image));
    }
    println!(
        "Removed {} blobs ({}), {} rootfs directories, {} VM disks and {} VM initramfs archives",
        report.blobs,
        human_size(report.bytes),
        report.rootfs_dirs,
        report.disks,
        report.initramfs_archives
    );
    Ok(0)
}

/// What running run uses image `image_id`, if any. A run store that cannot be read counts as
/// a user: better to keep an image than to pull it from under a run.
fn running_user_of(runs: &RunStore, image_id: &str) -> Option<String> {
    runs.running_user_of(image_id)
        .unwrap_or_else(|err| Some(format!("a run (the run records are unreadable: {err:#})")))
}

/// Splits `repository:tag` at the tag's colon.
fn split_name(name: &str) -> (String, String) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (name.to_string(), "<none>".to_string()),
    }
}
