//! Jump-host expansion: `-J a,b` / `ProxyJump a,b` become hops in dialling order, each resolved through
//! ssh_config like OpenSSH does (a jump host's own ProxyJump is honoured when it is the first of its
//! list), with cycles reported along the chain that made them.

use super::ssh_config::{Origin, Resolved};
use crate::dest::{Destination, parse_jump_list};
use crate::error::{Error, Result};

/// More hops than this is a configuration mistake, not a network.
const MAX_HOPS: usize = 16;

/// Which end of the chain a host is at: `-o` directives that say where to connect apply to the
/// destination only, as in `ssh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Destination,
    Jump,
}

/// Resolves one host through ssh_config; `Some(jumps)` replaces its ProxyJump (as `-J` does; empty is
/// `-J none`).
pub type Lookup<'a> = dyn Fn(&Destination, Role, Option<&[Destination]>) -> Result<Resolved> + 'a;

/// Every hop for `dest`, first to dial first; `jumps` is `-J`, parsed (empty for `none`).
pub fn expand(
    dest: &Destination,
    jumps: Option<&[Destination]>,
    lookup: &Lookup<'_>,
) -> Result<Vec<(Destination, Resolved)>> {
    let mut stack = Vec::new();
    let hops = hops_for(dest, Role::Destination, jumps, lookup, &mut stack)?;
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
    role: Role,
    jump_override: Option<&[Destination]>,
    lookup: &Lookup<'_>,
    stack: &mut Vec<String>,
) -> Result<Vec<(Destination, Resolved)>> {
    let resolved = lookup(dest, role, jump_override)?;
    let from_config;
    let jumps: &[Destination] = match jump_override {
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
                    _ => "-o ProxyJump".to_string(),
                };
                stack.push(name);
                from_config = parse_jump_list(pj)
                    .map_err(|e| Error::usage(format!("{place} {}: {e}", crate::dest::printable(pj))))?;
                &from_config.0
            }
            _ => &[],
        },
    };
    let mut hops = Vec::new();
    if let Some((last, rest)) = jumps.split_last() {
        // Like `ssh -J rest last`: the last jump host is reached through the ones before it, and only a
        // lone jump host brings its own ProxyJump.
        let rest = if rest.is_empty() { None } else { Some(rest) };
        hops = hops_for(last, Role::Jump, rest, lookup, stack)?;
    }
    if stack.last() == Some(&dest.original) {
        stack.pop();
    }
    hops.push((dest.clone(), resolved));
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::parse_destination;
    use crate::resolve::ssh_config::Setting;
    use std::collections::BTreeMap;

    /// A config where `a` jumps through `b` and `b` through `c`, `x`/`y` jump through each other, and
    /// `-o ProxyJump=p` (given for the destination only) sends `w` through `p`.
    fn lookup(d: &Destination, role: Role, _jumps: Option<&[Destination]>) -> Result<Resolved> {
        let own = match (d.host.as_str(), role) {
            ("a", _) => Some("b"),
            ("b", _) => Some("c"),
            ("x", _) => Some("y"),
            ("y", _) => Some("x"),
            (_, Role::Destination) if d.host.starts_with('w') => Some("p"),
            _ => None,
        };
        let mut settings = BTreeMap::new();
        if let Some(v) = own {
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

    fn jumps(s: &str) -> Vec<Destination> {
        parse_jump_list(s).unwrap().0
    }

    /// A jump host's own ProxyJump is honoured, recursively, as `ssh` does.
    #[test]
    fn nested_aliases() {
        assert_eq!(names(&expand(&dest("a"), None, &lookup).unwrap()), ["c", "b", "a"]);
    }

    /// -J replaces the destination's ProxyJump; with several items, only the first brings its own.
    #[test]
    fn jump_flag() {
        let expanded = |d: &str, j: &str| names(&expand(&dest(d), Some(&jumps(j)), &lookup).unwrap());
        assert_eq!(expanded("a", "d,e"), ["d", "e", "a"]);
        assert_eq!(expanded("z", "b"), ["c", "b", "z"]);
        assert_eq!(expanded("z", "a,d"), ["c", "b", "a", "d", "z"]);
        assert_eq!(expanded("a", "none"), ["a"]);
    }

    /// Only the destination is looked up as the destination: a ProxyJump that applies to it alone is not
    /// followed again from its jump host (which would be a loop through itself).
    #[test]
    fn destination_only_proxyjump() {
        assert_eq!(names(&expand(&dest("w"), None, &lookup).unwrap()), ["p", "w"]);
        assert_eq!(
            names(&expand(&dest("w"), Some(&jumps("w2")), &lookup).unwrap()),
            ["w2", "w"]
        );
    }

    /// A loop through ProxyJump is reported with the chain, not followed forever.
    #[test]
    fn cycles() {
        let e = expand(&dest("x"), None, &lookup).unwrap_err();
        assert!(e.message().contains("x -> y -> x"), "{e}");
    }
}
