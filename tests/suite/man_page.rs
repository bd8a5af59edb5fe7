//! The man page, packaging/docker-credential-lightsail.1, is generated from the CLI definition
//! (`cli::command()`) and `config::ENVIRONMENT`, and committed so that packagers need no build
//! step. These tests regenerate it and fail when the committed page differs, so it never drifts
//! from `--help`: run `UPDATE_MAN=1 cargo test --test suite man_page` to rewrite it. They also render
//! it with `man -l` (man-db) and check that the page and `--help` name the same subcommands and
//! environment variables.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::ArgAction;
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};
use docker_credential_lightsail::{cli, config};

const PAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/docker-credential-lightsail.1"
);
const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-lightsail");

/// The whole page. clap_mangen renders the title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS and
/// VERSION sections; COMMANDS (one page for all of them, with their options), ENVIRONMENT,
/// FILES, EXIT STATUS, EXAMPLES and SEE ALSO are added here.
fn render() -> String {
    let mut cmd = cli::command();
    cmd.build();
    let name = cmd.get_name().to_string();
    let man = Man::new(cmd.clone())
        .title(name.to_uppercase())
        // No date, so that the page only changes with the CLI; quoted, or the empty argument
        // would vanish and shift the footer fields.
        .date("\"\"")
        .manual("User Commands");

    type Section = fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let sections: [Section; 5] = [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ];
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for section in sections {
        let mut buf = Vec::new();
        section(&man, &mut buf).expect("render to a Vec");
        parts.push(buf);
    }

    let mut protocol = Roff::new();
    protocol.control("PP", []);
    protocol.text([roman(
        "get, store, erase and list are the actions of Docker's credential-helper protocol: \
         the client writes the server URL (or, for store, a JSON object) on standard input and \
         reads JSON on standard output. A host that is not a Lightsail registry is answered \
         with \"credentials not found in native keychain\", which clients take as no \
         credentials.",
    )]);
    parts.insert(4, protocol.render().into_bytes());

    let mut roff = Roff::new();
    commands_section(&mut roff, &cmd);
    environment_section(&mut roff);
    files_section(&mut roff);
    exit_status_section(&mut roff);
    examples_section(&mut roff);
    see_also_section(&mut roff);
    parts.push(roff.render().into_bytes());

    let mut buf = Vec::new();
    man.render_version_section(&mut buf)
        .expect("render to a Vec");
    parts.push(buf);

    // Every rendered part starts with the same two-line preamble (it defines the apostrophe
    // string); keep the first one only.
    let mut page = String::new();
    let mut preamble: Option<String> = None;
    for part in parts {
        let text = String::from_utf8(part).expect("roff output is UTF-8");
        match &preamble {
            None => {
                preamble = Some(text.lines().take(2).map(|l| format!("{l}\n")).collect());
                page.push_str(&text);
            }
            Some(p) => page.push_str(text.strip_prefix(p.as_str()).unwrap_or(&text)),
        }
    }
    page
}

fn commands_section(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let args: Vec<&clap::Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help")
            .collect();
        let mut tag = vec![bold(sub.get_name())];
        for arg in &args {
            tag.push(roman(" "));
            tag.extend(usage(arg));
        }
        roff.control("TP", []);
        roff.text(tag);
        let about = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        roff.text([roman(about)]);
        if args.is_empty() {
            continue;
        }
        roff.control("RS", []);
        for arg in &args {
            roff.control("TP", []);
            roff.text(usage(arg));
            let help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            roff.text([roman(help)]);
        }
        roff.control("RE", []);
    }
}

/// `--region <REGION>...` style usage of one argument, in brackets when it is optional.
fn usage(arg: &clap::Arg) -> Vec<Inline> {
    let mut parts = Vec::new();
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    if let Some(long) = arg.get_long() {
        parts.push(bold(format!("--{long}")));
        if arg.get_action().takes_values() {
            parts.push(roman(" "));
            parts.push(italic(value));
        }
    } else {
        parts.push(italic(value));
    }
    let repeated = matches!(arg.get_action(), ArgAction::Append);
    if !arg.is_required_set() {
        parts.insert(0, roman("["));
        parts.push(roman("]"));
    }
    if repeated {
        parts.push(roman("..."));
    }
    parts
}

fn environment_section(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, what) in config::ENVIRONMENT {
        roff.control("TP", []);
        roff.text([bold(*name)]);
        roff.text([roman(*what)]);
    }
}

fn files_section(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    let files: [(&str, &str); 4] = [
        (
            "~/.config/docker-credential-lightsail/config.json",
            "The helper's own configuration: which AWS profile each registry host uses, as \
             {\"registries\": {\"<host>\": {\"profile\": \"<name>\"}}}. configure --profile \
             writes it; get for a host in it uses that profile only, whatever AWS_PROFILE or keys \
             in the environment say. It is used only if it is the user's own regular file, not a \
             symbolic link, and writable by nobody else (configure writes it 0600, atomically). \
             $XDG_CONFIG_HOME or DOCKER_CREDENTIAL_LIGHTSAIL_CONFIG_DIR move it.",
        ),
        (
            "~/.cache/docker-credential-lightsail/",
            "The cache: one file per region and AWS identity with the registry login the API \
             gave, one per registry host with what docker login stored, and a lock file beside \
             each. The folder is kept at mode 0700 and its files at 0600. \
             $XDG_CACHE_HOME or DOCKER_CREDENTIAL_LIGHTSAIL_CACHE_DIR move it.",
        ),
        (
            "~/.docker/config.json",
            "Docker's client configuration. Its \"credHelpers\" object maps each Lightsail \
             registry host to \"lightsail\", which makes the client run this helper; configure \
             adds those entries and keeps every other key. DOCKER_CONFIG moves the folder.",
        ),
        (
            "~/.aws/config, ~/.aws/credentials",
            "AWS profiles, SSO sessions and keys, read as the AWS CLI reads them \
             (AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE move them).",
        ),
    ];
    for (path, what) in files {
        roff.control("TP", []);
        roff.text([italic(path)]);
        roff.text([roman(what)]);
    }
}

fn exit_status_section(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    roff.control("TP", []);
    roff.text([bold("0")]);
    roff.text([roman("Success.")]);
    roff.control("TP", []);
    roff.text([bold("1")]);
    roff.text([roman(
        "Failure. The commands for people (configure, register, push, completions, version) \
         print it as one \"error: ...\" line on standard error, so that their standard output \
         holds results only. Docker's actions (get, store, erase, list) print it on standard \
         output, as the protocol has it (for example \"credentials not found in native \
         keychain\"), and nothing on standard error.",
    )]);
    roff.control("TP", []);
    roff.text([bold("2")]);
    roff.text([roman(
        "The command line could not be parsed; the message is printed on standard error.",
    )]);
}

fn examples_section(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    roff.text([roman(
        "Point Docker at the helper for the Lightsail registry of your account in us-east-1:",
    )]);
    example(
        roff,
        &["docker-credential-lightsail configure --region us-east-1"],
    );
    roff.text([roman("which adds to ~/.docker/config.json:")]);
    example(
        roff,
        &[r#"{ "credHelpers": { "123456789012.dkr.ecr.us-east-1.amazonaws.com": "lightsail" } }"#],
    );
    roff.text([roman(
        "With a staging and a production account, bind each registry to its own AWS profile:",
    )]);
    example(
        roff,
        &[
            "docker-credential-lightsail configure --profile staging --region us-east-1",
            "docker-credential-lightsail configure --profile production --region us-east-1",
        ],
    );
    roff.text([roman("Ask for credentials as Docker does:")]);
    example(
        roff,
        &["echo 123456789012.dkr.ecr.us-east-1.amazonaws.com | docker-credential-lightsail get"],
    );
    roff.text([roman(
        "Push a local image to the registry of the container service hello, register it, and \
         deploy it as the image of its container web:",
    )]);
    example(roff, &[PUSH_EXAMPLE]);
    roff.text([roman(
        "When docker push says \"no basic auth credentials\" or \"denied\", find out why:",
    )]);
    example(roff, &[DOCTOR_EXAMPLE]);
    roff.text([roman(
        "Tab completion for bash (the packages install it; zsh, fish and powershell work too):",
    )]);
    example(
        roff,
        &[
            "docker-credential-lightsail completions bash > ~/.local/share/bash-completion/completions/docker-credential-lightsail",
        ],
    );
    roff.text([roman("Register a pushed image with a container service:")]);
    example(
        roff,
        &[
            "docker-credential-lightsail register --service my-service --label web \\",
            "    --digest sha256:<digest> --region us-east-1",
        ],
    );
}

/// The README's `push --deploy` example, which the page repeats.
const PUSH_EXAMPLE: &str = "docker-credential-lightsail push --region us-east-1 --service hello --label web --deploy web my-app:latest";
const DOCTOR_EXAMPLE: &str = "docker-credential-lightsail doctor";

fn example(roff: &mut Roff, lines: &[&str]) {
    roff.control("PP", []);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in lines {
        roff.text([roman(*line)]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
    roff.control("PP", []);
}

fn see_also_section(roff: &mut Roff) {
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("docker"),
        roman("(1), "),
        bold("docker-login"),
        roman("(1), "),
        bold("aws"),
        roman("(1)"),
    ]);
}

#[test]
fn committed_man_page_is_up_to_date() {
    let generated = render();
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(PAGE, &generated).expect("write the man page");
        return;
    }
    let committed = std::fs::read_to_string(PAGE).unwrap_or_default();
    assert!(
        committed == generated,
        "{PAGE} is stale: the CLI changed. Rewrite it with\n    \
         UPDATE_MAN=1 cargo test --test suite man_page\nand commit it."
    );
}

/// `man -l` output, plain text, no hyphenation or justification (so names are never split).
fn man_text(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--nh", "--nj", "--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "200") // wide enough that no synopsis wraps
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .env_remove("MAN_KEEP_FORMATTING")
        .output()
        .expect("man (Debian's man-db) must be installed: apt-get install man-db");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l failed: {stderr}");
    assert!(stderr.trim().is_empty(), "man -l warned: {stderr}");
    let text = String::from_utf8(out.stdout).expect("man output is UTF-8");
    // Strip any overstrike formatting (bold "x\bx", underline "_\bx").
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The lines of one section of `man` output (headings are flush left, body indented).
fn man_section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// The tags of a `.TP` list in `man` output: the first word of each line indented by the
/// standard 7 columns that is followed by its body, either on the same line after a gap (short
/// tags) or on the next line indented further. Bodies and nested lists are indented further;
/// plain paragraph lines are neither.
fn man_entries(lines: &[&str]) -> BTreeSet<String> {
    const TAG: &str = "       ";
    let mut entries = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix(TAG) else {
            continue;
        };
        if rest.starts_with(' ') || rest.is_empty() {
            continue;
        }
        let word = rest.split_whitespace().next().unwrap_or_default();
        let inline_body = rest[word.len()..].starts_with("  ");
        let body_below = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with(&format!("{TAG}  ")) && !next.trim().is_empty());
        if inline_body || body_below {
            entries.insert(word.to_string());
        }
    }
    entries
}

fn help_text() -> String {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The entries of a `--help` section such as "Commands:": first words of its 2-space-indented
/// lines, up to the next blank line or heading.
pub fn help_entries(help: &str, heading: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every NAME_LIKE_THIS (capitals with at least one underscore) in a text.
fn env_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .map(|w| w.trim_matches('_'))
        .filter(|w| w.contains('_') && w.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(str::to_string)
        .collect()
}

#[test]
fn man_renders_the_page() {
    let text = man_text(Path::new(PAGE));
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
        "VERSION",
    ] {
        assert!(
            text.lines().any(|l| l.trim_end() == heading),
            "no {heading} section in man -l output:\n{text}"
        );
    }
    assert!(
        text.contains(
            "docker-credential-lightsail - Docker credential helper for Amazon Lightsail"
        ),
        "NAME line missing:\n{text}"
    );
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert!(
        man_section(&text, "VERSION")
            .iter()
            .any(|l| l.trim() == version),
        "VERSION is not {version}:\n{text}"
    );
    for path in [
        "~/.cache/docker-credential-lightsail/",
        "~/.docker/config.json",
        "~/.config/docker-credential-lightsail/config.json",
    ] {
        assert!(
            man_section(&text, "FILES")
                .iter()
                .any(|l| l.trim() == path || l.trim().starts_with(&format!("{path},"))),
            "FILES does not list {path}:\n{text}"
        );
    }
}

#[test]
fn man_page_and_help_name_the_same_subcommands() {
    let help = help_text();
    let in_help = help_entries(&help, "Commands:");
    assert!(
        in_help.contains("get") && in_help.contains("configure"),
        "could not read the commands of --help:\n{help}"
    );
    let text = man_text(Path::new(PAGE));
    let in_man = man_entries(&man_section(&text, "COMMANDS"));
    assert_eq!(
        in_man, in_help,
        "COMMANDS of the man page vs Commands: of --help"
    );
}

#[test]
fn man_page_and_help_name_the_same_environment_variables() {
    let help = help_text();
    let text = man_text(Path::new(PAGE));

    let listed_in_help = help_entries(&help, "Environment:");
    let listed_in_man = man_entries(&man_section(&text, "ENVIRONMENT"));
    let listed: BTreeSet<String> = config::ENVIRONMENT
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        listed_in_help, listed,
        "Environment: of --help vs config::ENVIRONMENT"
    );
    assert_eq!(
        listed_in_man, listed,
        "ENVIRONMENT of the man page vs config::ENVIRONMENT"
    );

    // Every variable that --help mentions anywhere (AWS_CONFIG_FILE in a description, say) is
    // in the man page's ENVIRONMENT section too.
    let environment_text = man_section(&text, "ENVIRONMENT").join("\n");
    let mentioned_in_man = env_names(&environment_text);
    let mentioned_in_help = env_names(&help);
    assert_eq!(
        mentioned_in_man, mentioned_in_help,
        "variables named in the man page's ENVIRONMENT vs in --help"
    );
}

/// EXIT STATUS tells the two kinds of command apart, and EXAMPLES show `push` (as the README
/// has it, and as the binary parses it) and `doctor`.
#[test]
fn man_page_exit_status_and_examples_are_right() {
    let text = man_text(Path::new(PAGE));
    let status = man_section(&text, "EXIT STATUS").join(" ");
    let status = status.split_whitespace().collect::<Vec<_>>().join(" ");
    for says in [
        "The commands for people (configure, register, push, completions, version) print it as one \"error: ...\" line on standard error",
        "Docker's actions (get, store, erase, list) print it on standard output",
    ] {
        assert!(
            status.contains(says),
            "EXIT STATUS does not say {says:?}:\n{status}"
        );
    }
    let examples = man_section(&text, "EXAMPLES")
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>();
    for example in [PUSH_EXAMPLE, DOCTOR_EXAMPLE] {
        assert!(examples.contains(&example), "EXAMPLES lack {example}");
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(PUSH_EXAMPLE),
        "the README's push example changed"
    );
    let words = PUSH_EXAMPLE.split_whitespace();
    if let Err(err) = cli::command().try_get_matches_from(words) {
        panic!("the push example does not parse: {err}");
    }
}
