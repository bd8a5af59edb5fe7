//! `push`: a local image to a registered (and, with `--deploy`, deployed) container image in one
//! command, what `aws lightsail push-container-image` does, with this helper's cached login.
//!
//! Everything that can be checked is checked before anything is pushed: the names, the image and
//! its platform, the service, and with `--deploy` the container and that no deployment is under
//! way. The temporary tag is removed whatever happens after it was made, an interrupt (SIGINT,
//! SIGTERM, SIGHUP) included: from the tag on, this function owns the run's end. Once the image
//! is registered, its name is printed whatever happens next.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::actions::region_login;
use crate::cache::Cache;
use crate::cli::PushArgs;
use crate::config::Config;
use crate::engine::{Engine, PLATFORM};
use crate::error::{Error, Result, one_line};
use crate::lightsail::{Service, Session, resolve_region};
use crate::output::Output;
use crate::register::{check_name, with_profile};

/// Polls of a deployment start this far apart and slow down to `MAX_POLL`.
const FIRST_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(5);
/// How often a pause between polls looks for an interrupt.
const INTERRUPT_POLL: Duration = Duration::from_millis(50);

pub fn push(config: &Config, args: &PushArgs, now: u64, output: &mut Output) -> Result<()> {
    check_name("service name", &args.service, 63)?;
    check_name("label", &args.label, 53)?;
    if let Some(container) = &args.deploy {
        check_name("container name", container, 53)?;
    }
    let config = &*with_profile(config, args.profile.as_deref())?;
    let quiet = args.quiet;

    let engine = Engine::find(args.engine, config)?;
    let local = engine.inspect(&args.image)?;
    if local.platform != PLATFORM {
        return Err(Error::WrongPlatform {
            image: one_line(&args.image),
            platform: local.platform,
        });
    }
    let region = resolve_region(config, args.region.as_ref())?;
    let session = Session::connect(config, &region)?;
    let service = session.service(&args.service)?;
    if let Some(container) = &args.deploy {
        check_deployable(&service, container)?;
    }
    let cache = Cache::open_or_log(config.cache_dir.as_deref());
    let login = region_login(config, cache.as_ref(), &region, now, |_| {
        session.registry_login()
    })?;

    let target = format!("{}/sr:{}", login.registry, unique_tag(now));
    say(
        output,
        quiet,
        &format!("Pushing {} as {target}", args.image),
    );
    // From here on there is a tag (and a folder with the password) to clean up: an interrupt is
    // noted, and the run ends through the clean-up below.
    let interrupt = Interrupt::watch();
    engine.tag(&args.image, &target)?;
    let pushed = engine.push(&target, &login, &|| interrupt.received(), &mut |line| {
        say(output, quiet, line)
    });
    // The image stays under its own names; an image known only by its id keeps the tag,
    // since removing its only tag would delete it.
    let untagged = if local.tags > 0 {
        match engine.untag(&args.image, &target) {
            Ok(()) => true,
            Err(err) => {
                // A leftover tag is no reason to leave what follows undone.
                output.note(format!(
                    "warning: could not remove the temporary tag {target} ({err}): remove it with `{}`",
                    engine.untag_command(&args.image, &target)
                ));
                false
            }
        }
    } else {
        say(
            output,
            quiet,
            &format!(
                "{} has no tag of its own: left it tagged {target} so that it is not deleted",
                args.image
            ),
        );
        false
    };
    let not_pushed = || {
        let tag = if untagged {
            ", removed its temporary tag"
        } else {
            ""
        };
        format!(
            "stopped {} push of {}{tag}; nothing was registered",
            engine.name(),
            args.image
        )
    };
    let digest = pushed.map_err(|err| interrupt.or(err, not_pushed))?;
    interrupt.check(|| {
        format!(
            "{} was pushed ({digest}), but not registered: `docker-credential-lightsail register --service {} --label {} --digest {digest}` does it",
            args.image, args.service, args.label
        )
    })?;
    say(
        output,
        quiet,
        &format!("Registering {digest} with {}", args.service),
    );
    let image = session
        .register_image(&args.service, &args.label, &digest)?
        .image;

    // What follows can fail, or be interrupted: the registered name is printed whatever happens.
    let deployed = match &args.deploy {
        Some(container) => deploy(&session, args, container, &image, &interrupt, &mut |text| {
            say(output, quiet, text)
        }),
        None => Ok(()),
    };
    output.result(&image)?;
    deployed
}

/// `--deploy CONTAINER`: the current deployment, read again just before the new one is made so
/// that a deployment made during the push is built on, not reverted; then waits, unless told not to.
fn deploy(
    session: &Session,
    args: &PushArgs,
    container: &str,
    image: &str,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let not_deployed = || format!("{image} is registered, not deployed");
    interrupt.check(not_deployed)?;
    let service = session.service(&args.service)?;
    check_deployable(&service, container)?;
    interrupt.check(not_deployed)?;
    let deployment = session.deploy(&service, container, image)?;
    progress(&format!(
        "Deployment {} of {}: {} with {container} running {image}",
        deployment.version, args.service, deployment.state
    ));
    if args.no_wait {
        return Ok(());
    }
    wait_until_active(
        session,
        &args.service,
        deployment.version,
        container,
        Duration::from_secs(args.wait_timeout),
        interrupt,
        progress,
    )
}

/// `--deploy CONTAINER` needs a current deployment with that container, and none under way.
fn check_deployable(service: &Service, container: &str) -> Result<()> {
    let current = service
        .current
        .as_ref()
        .ok_or_else(|| Error::NoDeployment {
            service: service.name.clone(),
        })?;
    if let Some(next) = service
        .next
        .as_ref()
        .filter(|next| next.state == "ACTIVATING")
    {
        return Err(Error::DeploymentInProgress {
            service: service.name.clone(),
            version: next.version,
            state: next.state.clone(),
        });
    }
    if !current.has_container(container) {
        return Err(Error::UnknownContainer {
            service: service.name.clone(),
            container: container.to_string(),
            containers: current.container_names().join(", "),
        });
    }
    Ok(())
}

/// Polls the service until deployment `version` is its ACTIVE current deployment, showing each
/// new state; FAILED, superseded by a newer one, or still not ACTIVE after `timeout`, is an
/// error. A deployment not listed yet (the first polls may come before Lightsail lists it) is
/// waited for; one that was listed and is gone, with nothing newer, has failed.
fn wait_until_active(
    session: &Session,
    service: &str,
    version: i32,
    container: &str,
    timeout: Duration,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    let mut shown = String::new();
    let mut listed = false;
    let unwatched = || {
        format!(
            "deployment {version} of {service} goes on unwatched: follow it with `aws lightsail get-container-services --service-name {service}`"
        )
    };
    loop {
        let now = session.service(service)?;
        let current = now.current.as_ref();
        let running = current.map_or("none".to_string(), |current| current.version.to_string());
        let listing = [current, now.next.as_ref()];
        let ours = listing.iter().flatten().find(|d| d.version == version);
        let newer = listing
            .iter()
            .flatten()
            .map(|d| d.version)
            .filter(|v| *v > version)
            .max();
        let state = match (ours, newer) {
            (Some(ours), _) => {
                listed = true;
                ours.state.clone()
            }
            (None, Some(by)) => {
                return Err(Error::DeploymentSuperseded {
                    service: service.to_string(),
                    version,
                    by,
                    running,
                });
            }
            (None, None) if !listed => "not listed yet".to_string(),
            // Listed before, now neither current nor next: Lightsail dropped it, as it does a
            // failed deployment.
            (None, None) => "FAILED".to_string(),
        };
        if state != shown {
            progress(&format!("Deployment {version} of {service}: {state}"));
            shown.clone_from(&state);
        }
        match state.as_str() {
            "ACTIVE" => return Ok(()),
            "FAILED" => {
                return Err(Error::DeploymentFailed {
                    service: service.to_string(),
                    version,
                    running,
                    container: container.to_string(),
                });
            }
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::DeploymentTimeout {
                service: service.to_string(),
                version,
                state,
                after: timeout,
                running,
            });
        }
        interrupt.pause(pause.min(left));
        interrupt.check(unwatched)?;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// A progress line, unless `--quiet`.
fn say(output: &mut Output, quiet: bool, text: &str) {
    if !quiet {
        output.note(text);
    }
}

/// SIGINT, SIGTERM and SIGHUP, noted instead of ending the process at once, for as long as the
/// run lasts (only `push` watches for them, and only once it has something to clean up). A
/// second one ends the process at once, as a second Ctrl-C does elsewhere.
struct Interrupt {
    /// The number of the last signal received; 0 for none.
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    fn watch() -> Interrupt {
        let signal = Arc::new(AtomicUsize::new(0));
        #[cfg(unix)]
        {
            let once = Arc::new(std::sync::atomic::AtomicBool::new(false));
            for number in [
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ] {
                let value = usize::try_from(number).unwrap_or(0);
                // In this order: the shutdown sees the flag as it was before this signal.
                let registered = signal_hook::flag::register_conditional_shutdown(
                    number,
                    128 + number,
                    Arc::clone(&once),
                )
                .and_then(|_| signal_hook::flag::register(number, Arc::clone(&once)))
                .and_then(|_| {
                    signal_hook::flag::register_usize(number, Arc::clone(&signal), value)
                });
                if let Err(err) = registered {
                    tracing::debug!("cannot watch for signal {number}: {err}");
                }
            }
        }
        Interrupt { signal }
    }

    fn received(&self) -> bool {
        self.signal.load(Ordering::SeqCst) != 0
    }

    /// `Error::Interrupted` saying what `undone` says, if a signal came.
    fn check(&self, undone: impl FnOnce() -> String) -> Result<()> {
        let number = self.signal.load(Ordering::SeqCst);
        let signal = match number {
            0 => return Ok(()),
            1 => "SIGHUP",
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "a signal",
        };
        Err(Error::Interrupted {
            signal,
            number: u8::try_from(number).unwrap_or(0),
            undone: undone(),
        })
    }

    /// `err`, or the interrupt that caused it.
    fn or(&self, err: Error, undone: impl FnOnce() -> String) -> Error {
        self.check(undone).err().unwrap_or(err)
    }

    /// Sleeps for `duration`, or less once a signal came.
    fn pause(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while !self.received() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(INTERRUPT_POLL));
        }
    }
}

/// A tag no other push uses: the time, then this process's id.
fn unique_tag(now: u64) -> String {
    format!("push-{now}-{}", std::process::id())
}
