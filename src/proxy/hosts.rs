//! Which hosts are Discord's (intercepted and recorded) and which are tunnelled untouched.

/// Discord's domains; each also covers its subdomains.
pub(crate) const DISCORD_DOMAINS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "discord.gg",
    "discordapp.net",
    "discord.media",
];

/// A list of domains matched with their subdomains.
#[derive(Debug, Clone)]
pub(crate) struct HostMatcher {
    domains: Vec<String>,
}

impl Default for HostMatcher {
    fn default() -> Self {
        HostMatcher::new(DISCORD_DOMAINS.iter().map(|d| d.to_string()))
    }
}

impl HostMatcher {
    /// Matches these domains (lower-cased, trailing dots and `*.` prefixes ignored).
    pub(crate) fn new(domains: impl IntoIterator<Item = String>) -> Self {
        HostMatcher {
            domains: domains
                .into_iter()
                .map(|d| {
                    d.trim()
                        .trim_start_matches("*.")
                        .trim_end_matches('.')
                        .to_ascii_lowercase()
                })
                .filter(|d| !d.is_empty())
                .collect(),
        }
    }

    /// Whether `host` (no port) is one of the domains or below one.
    pub(crate) fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|domain| {
            host == *domain
                || (host.len() > domain.len()
                    && host.ends_with(domain.as_str())
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_domains_and_subdomains_only() {
        let m = HostMatcher::default();
        for host in [
            "discord.com",
            "gateway.discord.gg",
            "cdn.discordapp.com",
            "Media.DiscordApp.Net.",
            "x.discord.media",
        ] {
            assert!(m.matches(host), "{host}");
        }
        for host in [
            "notdiscord.com",
            "discord.com.evil.net",
            "example.org",
            "discord.co",
        ] {
            assert!(!m.matches(host), "{host}");
        }
        let custom = HostMatcher::new(["*.example.test".to_string()]);
        assert!(custom.matches("api.example.test") && !custom.matches("discord.com"));
    }
}
