//! `push`: a local image to a registered (and, with `--deploy`, deployed) container image in one
//! command, what `aws lightsail push-container-image` does, with this helper's cached login.
//!
//! Everything that can be checked is checked before anything is pushed: the names, the image and
//! its platform, the service, and with `--deploy` the container and that no deployment is under
//! way. The temporary tag is removed whatever happens after it was made.

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

pub fn push(config: &Config, args: &PushArgs, now: u64, output: &mut Output) -> Result<()> {
    check_name("service name", &args.service, 63)?;
    check_name("label", &args.label, 53)?;
    if let Some(container) = &args.deploy {
        check_name("container name", container, 53)?;
    }
    let config = &*with_profile(config, args.profile.as_deref())?;
    let mut progress = |text: &str| {
        if !args.quiet {
            output.note(text);
        }
    };

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
    progress(&format!("Pushing {} as {target}", args.image));
    engine.tag(&args.image, &target)?;
    let pushed = engine.push(&target, &login, &mut progress);
    // The image stays under its own names; an image known only by its id keeps the tag,
    // since removing its only tag would delete it.
    let untagged = if local.tags > 0 {
        engine.untag(&args.image, &target)
    } else {
        progress(&format!(
            "{} has no tag of its own: left it tagged {target} so that it is not deleted",
            args.image
        ));
        Ok(())
    };
    // The push's own failure says more than one of the clean-up after it.
    let digest = pushed?;
    untagged?;
    progress(&format!("Registering {digest} with {}", args.service));
    let image = session.register_image(&args.service, &args.label, &digest)?;

    if let Some(container) = &args.deploy {
        let deployment = session.deploy(&service, container, &image.image)?;
        progress(&format!(
            "Deployment {} of {}: {} with {container} running {}",
            deployment.version, args.service, deployment.state, image.image
        ));
        if !args.no_wait {
            let timeout = Duration::from_secs(args.wait_timeout);
            wait_until_active(
                &session,
                &args.service,
                deployment.version,
                container,
                timeout,
                &mut progress,
            )?;
        }
    }
    output.result(image.image)
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
    let names = current.container_names();
    if !names.contains(&container) {
        return Err(Error::UnknownContainer {
            service: service.name.clone(),
            container: container.to_string(),
            containers: names.join(", "),
        });
    }
    Ok(())
}

/// Polls the service until deployment `version` is its ACTIVE current deployment, showing each
/// new state; FAILED, or still not ACTIVE after `timeout`, is an error.
fn wait_until_active(
    session: &Session,
    service: &str,
    version: i32,
    container: &str,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    let mut shown = String::new();
    loop {
        let now = session.service(service)?;
        let current = now.current.as_ref();
        let running = current.map_or("none".to_string(), |current| current.version.to_string());
        let state = match (current, now.next.as_ref()) {
            (Some(current), _) if current.version == version => current.state.clone(),
            (_, Some(next)) if next.version == version => next.state.clone(),
            // Neither current nor next: Lightsail dropped it, as it does a failed deployment.
            _ => "FAILED".to_string(),
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
            });
        }
        thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// A tag no other push uses: the time, then this process's id.
fn unique_tag(now: u64) -> String {
    format!("push-{now}-{}", std::process::id())
}
