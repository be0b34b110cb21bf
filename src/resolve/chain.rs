//! Jump-host expansion: `-J a,b` / `ProxyJump a,b` become hops in dialling order, each resolved through
//! ssh_config like OpenSSH does (a jump host's own ProxyJump is honoured when it is the first of its
//! list), with cycles reported along the chain that made them.

use super::dest::{Destination, parse_destination};
use super::ssh_config::{Origin, Resolved};
use crate::error::{Error, Result};

/// More hops than this is a configuration mistake, not a network.
const MAX_HOPS: usize = 16;

/// Resolves one host through ssh_config; the second argument overrides its ProxyJump.
pub type Lookup<'a> = dyn Fn(&Destination, Option<&str>) -> Result<Resolved> + 'a;

/// Every hop for `dest`, first to dial first; `jump_flag` is `-J` as typed (`none` ignores ProxyJump).
pub fn expand(
    dest: &Destination,
    jump_flag: Option<&str>,
    lookup: &Lookup<'_>,
) -> Result<Vec<(Destination, Resolved)>> {
    let jumps = match jump_flag {
        None => None,
        Some(list) => Some(parse_jump_list(list, "-J")?),
    };
    let mut stack = Vec::new();
    let hops = hops_for(dest, jumps, lookup, &mut stack)?;
    if hops.len() > MAX_HOPS {
        return Err(Error::usage(format!(
            "the chain to {} has {} hops (at most {MAX_HOPS}); check ProxyJump in the config",
            dest.original,
            hops.len()
        )));
    }
    Ok(hops)
}

fn hops_for(
    dest: &Destination,
    jump_override: Option<Vec<Destination>>,
    lookup: &Lookup<'_>,
    stack: &mut Vec<String>,
) -> Result<Vec<(Destination, Resolved)>> {
    let override_text = jump_override.as_ref().map(|jumps| {
        if jumps.is_empty() {
            "none".to_string()
        } else {
            jumps.iter().map(|j| j.original.clone()).collect::<Vec<_>>().join(",")
        }
    });
    let resolved = lookup(dest, override_text.as_deref())?;
    let jumps = match jump_override {
        Some(jumps) => jumps,
        None => match resolved.get("proxyjump") {
            Some(pj) if !pj.eq_ignore_ascii_case("none") => {
                // Expanding a host through its own ProxyJump: the place a cycle can come from.
                let name = dest.original.clone();
                if stack.contains(&name) || stack.len() >= MAX_HOPS {
                    let mut chain = stack.clone();
                    chain.push(name);
                    return Err(Error::usage(format!(
                        "ProxyJump loop: {} (check the ProxyJump lines of these hosts in the config)",
                        chain.join(" -> ")
                    )));
                }
                let place = match resolved.origin("proxyjump") {
                    Some(Origin::File { path, line }) => format!("{}:{line}: ProxyJump", path.display()),
                    _ => "ProxyJump".to_string(),
                };
                stack.push(name);
                parse_jump_list(pj, &place)?
            }
            _ => Vec::new(),
        },
    };
    let mut hops = Vec::new();
    if let Some((last, rest)) = jumps.split_last() {
        // Like `ssh -J rest last`: the last jump host is reached through the ones before it, and only a
        // lone jump host brings its own ProxyJump.
        let rest = if rest.is_empty() { None } else { Some(rest.to_vec()) };
        hops = hops_for(last, rest, lookup, stack)?;
    }
    if stack.last() == Some(&dest.original) {
        stack.pop();
    }
    hops.push((dest.clone(), resolved));
    Ok(hops)
}

/// `a,user@b:2222,ssh://c` → destinations; `none` → empty.
pub fn parse_jump_list(list: &str, place: &str) -> Result<Vec<Destination>> {
    let list = list.trim();
    if list.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|item| {
            parse_destination(item.trim())
                .map_err(|e| Error::usage(format!("{place} {}: {e}", crate::resolve::dest::printable(list))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::ssh_config::Setting;
    use std::collections::BTreeMap;

    /// A config where `a` jumps through `b` and `b` through `c`, and `x`/`y` jump through each other.
    fn lookup(d: &Destination, pj: Option<&str>) -> Result<Resolved> {
        let own = match d.host.as_str() {
            "a" => Some("b"),
            "b" => Some("c"),
            "x" => Some("y"),
            "y" => Some("x"),
            _ => None,
        };
        let mut settings = BTreeMap::new();
        if let Some(v) = pj.or(own) {
            settings.insert(
                "proxyjump".to_string(),
                Setting::new(vec![v.to_string()], Origin::CommandLine),
            );
        }
        Ok(Resolved {
            settings,
            unsupported: Vec::new(),
        })
    }

    fn names(hops: &[(Destination, Resolved)]) -> Vec<String> {
        hops.iter().map(|(d, _)| d.original.clone()).collect()
    }

    fn dest(s: &str) -> Destination {
        parse_destination(s).unwrap()
    }

    /// A jump host's own ProxyJump is honoured, recursively, as `ssh` does.
    #[test]
    fn nested_aliases() {
        assert_eq!(names(&expand(&dest("a"), None, &lookup).unwrap()), ["c", "b", "a"]);
    }

    /// -J replaces the destination's ProxyJump; with several items, only the first brings its own.
    #[test]
    fn jump_flag() {
        assert_eq!(
            names(&expand(&dest("a"), Some("d,e"), &lookup).unwrap()),
            ["d", "e", "a"]
        );
        assert_eq!(names(&expand(&dest("z"), Some("b"), &lookup).unwrap()), ["c", "b", "z"]);
        assert_eq!(
            names(&expand(&dest("z"), Some("a,d"), &lookup).unwrap()),
            ["c", "b", "a", "d", "z"]
        );
        assert_eq!(names(&expand(&dest("a"), Some("none"), &lookup).unwrap()), ["a"]);
    }

    /// A loop through ProxyJump is reported with the chain, not followed forever.
    #[test]
    fn cycles() {
        let e = expand(&dest("x"), None, &lookup).unwrap_err();
        assert!(e.message().contains("x -> y -> x"), "{e}");
    }

    /// Jump items take every destination spelling, and a bad one names where it came from.
    #[test]
    fn jump_items() {
        let list = parse_jump_list("u@h1:2222,ssh://h2,[::1]:22", "-J").unwrap();
        assert_eq!(
            list.iter().map(|d| d.host.as_str()).collect::<Vec<_>>(),
            ["h1", "h2", "::1"]
        );
        assert!(parse_jump_list("h1,,h2", "-J").unwrap_err().message().contains("-J"));
        let e = parse_jump_list("ok@h1,x;touch m@h2", "-J").unwrap_err();
        assert!(
            e.message()
                .starts_with("-J ok@h1,x;touch m@h2: `x;touch m@h2`: the SSH user name"),
            "{e}"
        );
        let e = parse_jump_list("h1,-oProxyCommand=x", "cfg:3: ProxyJump").unwrap_err();
        assert!(
            e.message().contains("cfg:3: ProxyJump") && e.message().contains("starts with `-`"),
            "{e}"
        );
    }
}
