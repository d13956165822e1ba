//! Name resolution for upstream: `--resolve` pins first, then DNS servers asked directly.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use super::{ResolveOverride, UpstreamError};

/// Which DNS servers to ask (`--dns`). None of them consults /etc/hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsChoice {
    /// The nameservers listed in /etc/resolv.conf.
    #[default]
    System,
    /// 1.1.1.1 and friends.
    Cloudflare,
    /// 8.8.8.8 and friends.
    Google,
    /// One DNS server of your own (`IP` or `IP:PORT`), asked over UDP and TCP.
    Server(SocketAddr),
}

impl FromStr for DnsChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "system" => Ok(DnsChoice::System),
            "cloudflare" => Ok(DnsChoice::Cloudflare),
            "google" => Ok(DnsChoice::Google),
            other => other
                .parse::<SocketAddr>()
                .or_else(|_| other.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map(DnsChoice::Server)
                .map_err(|_| {
                    format!(
                        "`{other}` is not a DNS choice (system, cloudflare, google, IP or IP:PORT)"
                    )
                }),
        }
    }
}

/// Resolves upstream host names; cheap to clone.
#[derive(Clone)]
pub(crate) struct Resolver {
    dns: Arc<TokioResolver>,
    pins: Arc<HashMap<String, SocketAddr>>,
}

impl Resolver {
    /// A resolver asking `dns`, with `pins` taking precedence.
    pub(crate) fn new(
        dns: DnsChoice,
        pins: Vec<ResolveOverride>,
    ) -> Result<Resolver, UpstreamError> {
        let (config, mut opts) = match dns {
            DnsChoice::System => {
                hickory_resolver::system_conf::read_system_conf().map_err(|err| {
                    UpstreamError::Resolve {
                        host: "*".into(),
                        reason: format!("cannot read /etc/resolv.conf: {err}"),
                    }
                })?
            }
            DnsChoice::Cloudflare => (ResolverConfig::cloudflare(), ResolverOpts::default()),
            DnsChoice::Google => (ResolverConfig::google(), ResolverOpts::default()),
            DnsChoice::Server(addr) => (
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
                ),
                ResolverOpts::default(),
            ),
        };
        // The whole point: a hosts-file redirect of discord.com to this proxy must not loop.
        opts.use_hosts_file = ResolveHosts::Never;
        opts.timeout = opts.timeout.min(std::time::Duration::from_secs(3));
        opts.attempts = opts.attempts.min(2);
        let dns = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        let pins = pins.into_iter().map(|pin| (pin.host, pin.addr)).collect();
        Ok(Resolver {
            dns: Arc::new(dns),
            pins: Arc::new(pins),
        })
    }

    /// The addresses to try for `host:port`, in order.
    pub(crate) async fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, UpstreamError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addr) = self.pins.get(&name) {
            return Ok(vec![*addr]);
        }
        let answer = self
            .dns
            .lookup_ip(format!("{name}."))
            .await
            .map_err(|err| UpstreamError::Resolve {
                host: name.clone(),
                reason: err.to_string(),
            })?;
        let mut addrs: Vec<SocketAddr> =
            answer.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        // IPv4 first: many machines have no IPv6 route and each dead attempt costs a timeout.
        addrs.sort_by_key(|addr| addr.is_ipv6());
        if addrs.is_empty() {
            return Err(UpstreamError::Resolve {
                host: name,
                reason: "no addresses".into(),
            });
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pins_win_and_ip_literals_pass_through() {
        let pin: ResolveOverride = "discord.com=127.0.0.1:9443".parse().unwrap();
        let resolver = Resolver::new(DnsChoice::Cloudflare, vec![pin]).unwrap();
        let addrs = resolver.lookup("Discord.com", 443).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:9443".parse().unwrap()]);
        let addrs = resolver.lookup("[::1]", 8443).await.unwrap();
        assert_eq!(addrs, vec!["[::1]:8443".parse().unwrap()]);
    }

    #[test]
    fn dns_choice_parses() {
        assert_eq!("Google".parse::<DnsChoice>().unwrap(), DnsChoice::Google);
        assert!("hosts".parse::<DnsChoice>().is_err());
        assert_eq!(
            "127.0.0.1:5353".parse::<DnsChoice>().unwrap(),
            DnsChoice::Server("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            "10.0.0.1".parse::<DnsChoice>().unwrap(),
            DnsChoice::Server("10.0.0.1:53".parse().unwrap())
        );
    }
}
