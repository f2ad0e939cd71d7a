//! `image-builder`: writes a test image tarball from files on the host.
//!
//! ```text
//! image-builder --name wasi-demo-app --platform wasip1/wasm \
//!     --file /wasi-demo-app.wasm=target/wasm32-wasip1/release/wasi-demo-app.wasm \
//!     --file /data/hello.txt=hello.txt:0644 --entrypoint /wasi-demo-app.wasm --out image.tar
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use image_builder::{ImageBuilder, LockedAppPlace, SpinComponent, TopLevel, spin_artifact};

#[derive(Parser, Debug)]
#[command(about = "Writes an OCI image layout tarball (with a Docker manifest.json)")]
struct Args {
    /// Image name, normalized like Docker (`app` -> `docker.io/library/app:latest`).
    #[arg(long)]
    name: String,
    /// OS/ARCH[/VARIANT], e.g. wasip1/wasm, wasi/wasm32, linux/amd64.
    #[arg(long, default_value = "wasip1/wasm")]
    platform: String,
    /// IMAGE_PATH=HOST_PATH[:MODE] (octal mode; default 0755 if the host file is executable,
    /// else 0644). Repeat for more files.
    #[arg(long = "file", value_name = "IMAGE_PATH=HOST_PATH[:MODE]")]
    files: Vec<String>,
    /// MEDIA_TYPE=HOST_PATH[@TITLE]: a layer that is the file's bytes as they are, not a tar
    /// (a Wasm OCI artifact's `application/vnd.wasm.content.layer.v1+wasm`, say), optionally
    /// titled with the file name it stands for. Repeat for more.
    #[arg(long = "raw-layer", value_name = "MEDIA_TYPE=HOST_PATH[@TITLE]")]
    raw_layers: Vec<String>,
    /// A Spin OCI artifact (as `spin registry push` writes it) from this locked app, whose
    /// components' `source` and `files` are filled in from --spin-component and --spin-file.
    #[arg(long, value_name = "LOCKED_APP_JSON")]
    spin_locked_app: Option<PathBuf>,
    /// ID=HOST_PATH: the module of the locked app's component ID. Repeat for each component.
    #[arg(long = "spin-component", value_name = "ID=HOST_PATH")]
    spin_components: Vec<String>,
    /// ID:PATH=HOST_PATH: a file of component ID at PATH (relative to the component's root).
    #[arg(long = "spin-file", value_name = "ID:PATH=HOST_PATH")]
    spin_files: Vec<String>,
    /// One entrypoint argument; repeat for more.
    #[arg(long = "entrypoint", value_name = "ARG")]
    entrypoint: Vec<String>,
    /// One default argument (Cmd); repeat for more.
    #[arg(long = "cmd", value_name = "ARG")]
    cmd: Vec<String>,
    /// K=V environment entry; repeat for more.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Working directory of the image config.
    #[arg(long)]
    workdir: Option<String>,
    /// Point index.json at an image index holding the manifest, instead of at the manifest.
    #[arg(long)]
    nested_index: bool,
    /// Leave out Docker's manifest.json.
    #[arg(long)]
    no_docker_manifest: bool,
    /// Where to write the tar.
    #[arg(long)]
    out: PathBuf,
}

/// One `--file` argument.
#[derive(Debug, PartialEq)]
struct FileArg {
    image_path: String,
    host_path: PathBuf,
    mode: Option<u32>,
}

/// Parses `IMAGE_PATH=HOST_PATH[:MODE]`; a `:suffix` that is not octal stays part of the path.
fn parse_file_arg(arg: &str) -> Result<FileArg> {
    let Some((image_path, host)) = arg.split_once('=') else {
        bail!("--file {arg:?}: expected IMAGE_PATH=HOST_PATH[:MODE]");
    };
    if image_path.is_empty() || host.is_empty() {
        bail!("--file {arg:?}: expected IMAGE_PATH=HOST_PATH[:MODE]");
    }
    let (host_path, mode) = match host.rsplit_once(':') {
        Some((path, mode)) if !mode.is_empty() && mode.chars().all(|c| c.is_digit(8)) => {
            let mode = u32::from_str_radix(mode, 8)
                .with_context(|| format!("--file {arg:?}: mode {mode} is too large"))?;
            (path, Some(mode))
        }
        _ => (host, None),
    };
    Ok(FileArg {
        image_path: image_path.to_owned(),
        host_path: PathBuf::from(host_path),
        mode,
    })
}

/// 0755 for host files with any execute bit, else 0644: independent of umask and checkout.
fn default_mode(host_path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(host_path)
        .with_context(|| format!("cannot stat {}", host_path.display()))?;
    Ok(if metadata.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    })
}

fn image_from_args(args: &Args) -> Result<ImageBuilder> {
    let mut platform = args.platform.split('/');
    let (Some(os), Some(arch), variant, None) = (
        platform.next(),
        platform.next(),
        platform.next(),
        platform.next(),
    ) else {
        bail!("--platform {:?}: expected OS/ARCH[/VARIANT]", args.platform);
    };
    let mut image = ImageBuilder::new(&args.name).platform(os, arch);
    if let Some(variant) = variant {
        image = image.variant(variant);
    }
    for arg in &args.files {
        let file = parse_file_arg(arg)?;
        let content = std::fs::read(&file.host_path)
            .with_context(|| format!("cannot read {}", file.host_path.display()))?;
        let mode = match file.mode {
            Some(mode) => mode,
            None => default_mode(&file.host_path)?,
        };
        image = image.file(file.image_path, content, mode);
    }
    for arg in &args.raw_layers {
        let Some((media_type, file)) = arg
            .split_once('=')
            .filter(|(m, p)| !m.is_empty() && !p.is_empty())
        else {
            bail!("--raw-layer {arg:?}: expected MEDIA_TYPE=HOST_PATH[@TITLE]");
        };
        let (host_path, title) = match file.rsplit_once('@') {
            Some((path, title)) if !title.is_empty() => (path, Some(title)),
            _ => (file, None),
        };
        let content =
            std::fs::read(host_path).with_context(|| format!("cannot read {host_path}"))?;
        image = match title {
            Some(title) => image.titled_raw_layer(media_type, content, title),
            None => image.raw_layer(media_type, content),
        };
    }
    if let Some(locked) = &args.spin_locked_app {
        image = spin_image(image, locked, args)?;
    } else if !args.spin_components.is_empty() || !args.spin_files.is_empty() {
        bail!("--spin-component and --spin-file need --spin-locked-app");
    }
    if !args.entrypoint.is_empty() {
        image = image.entrypoint(args.entrypoint.clone());
    }
    if !args.cmd.is_empty() {
        image = image.cmd(args.cmd.clone());
    }
    image = image.env(args.env.clone());
    if let Some(dir) = &args.workdir {
        image = image.working_dir(dir);
    }
    if args.nested_index {
        image = image.top_level(TopLevel::ImageIndex);
    }
    Ok(image.docker_manifest(!args.no_docker_manifest))
}

/// The Spin artifact of `--spin-locked-app`, `--spin-component` and `--spin-file`.
fn spin_image(image: ImageBuilder, locked: &Path, args: &Args) -> Result<ImageBuilder> {
    let text =
        std::fs::read(locked).with_context(|| format!("cannot read {}", locked.display()))?;
    let locked_app = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", locked.display()))?;
    let mut components: BTreeMap<String, SpinComponent> = BTreeMap::new();
    for arg in &args.spin_components {
        let Some((id, host_path)) = arg
            .split_once('=')
            .filter(|(i, p)| !i.is_empty() && !p.is_empty())
        else {
            bail!("--spin-component {arg:?}: expected ID=HOST_PATH");
        };
        components.entry(id.to_owned()).or_default().module =
            std::fs::read(host_path).with_context(|| format!("cannot read {host_path}"))?;
    }
    for arg in &args.spin_files {
        let parsed = arg
            .split_once('=')
            .and_then(|(file, host)| Some((file.split_once(':')?, host)))
            .filter(|((id, path), host)| !id.is_empty() && !path.is_empty() && !host.is_empty());
        let Some(((id, path), host_path)) = parsed else {
            bail!("--spin-file {arg:?}: expected ID:PATH=HOST_PATH");
        };
        let Some(component) = components.get_mut(id) else {
            bail!("--spin-file {arg:?}: no --spin-component {id}=...");
        };
        let bytes = std::fs::read(host_path).with_context(|| format!("cannot read {host_path}"))?;
        component.files.insert(path.to_owned(), bytes);
    }
    spin_artifact(image, locked_app, &components, LockedAppPlace::Layer)
        .with_context(|| format!("the Spin application of {}", locked.display()))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let archive = image_from_args(&args)?.write_tar(&args.out)?;
    println!(
        "wrote {} ({}, manifest {})",
        args.out.display(),
        archive.reference(),
        archive.manifest_digest()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_arguments() {
        let cases = [
            ("/a=b", "/a", "b", None),
            ("/a=dir/b:0755", "/a", "dir/b", Some(0o755)),
            ("/a=b:600", "/a", "b", Some(0o600)),
            ("/a=c:d", "/a", "c:d", None),
            ("/a=c:9", "/a", "c:9", None),
        ];
        for (arg, image_path, host_path, mode) in cases {
            let expected = FileArg {
                image_path: image_path.into(),
                host_path: host_path.into(),
                mode,
            };
            assert_eq!(parse_file_arg(arg).unwrap(), expected, "{arg}");
        }
        for bad in ["/a", "=b", "/a=", "/a=b:77777777777"] {
            assert!(parse_file_arg(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn builds_an_image_from_arguments() {
        let dir = std::env::temp_dir().join(format!("image-builder-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let host_file = dir.join("hello.txt");
        std::fs::write(&host_file, "hi\n").unwrap();
        let out = dir.join("out.tar");
        let args = Args::parse_from([
            "image-builder",
            "--name",
            "demo",
            "--platform",
            "linux/arm64/v8",
            "--file",
            &format!("/data/hello.txt={}", host_file.display()),
            "--entrypoint",
            "/bin/demo",
            "--out",
            out.to_str().unwrap(),
        ]);
        let from_cli = image_from_args(&args).unwrap().build().unwrap();
        let expected = ImageBuilder::new("docker.io/library/demo:latest")
            .platform("linux", "arm64")
            .variant("v8")
            .file("/data/hello.txt", "hi\n", 0o644)
            .entrypoint(["/bin/demo"])
            .build()
            .unwrap();
        assert_eq!(from_cli.to_tar().unwrap(), expected.to_tar().unwrap());

        let bad = Args::parse_from([
            "image-builder",
            "--name",
            "x",
            "--platform",
            "linux",
            "--out",
            "o",
        ]);
        assert!(image_from_args(&bad).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
