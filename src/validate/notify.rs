//! `notify`: each webhook is a secret reference or a whole http(s) URL.
//! Its events and format are checked by the loader (their names are enums).

use super::Sink;
use crate::diagnostic::Problem;
use crate::load::runbook::RawNotify;
use crate::model::{Notify, NotifyEvent, Webhook};
use crate::template::secret_reference;

pub fn notify(sink: &mut Sink<'_>, raw: &[RawNotify]) -> Vec<Notify> {
    raw.iter()
        .filter_map(|n| {
            let webhook = match webhook(&n.webhook) {
                Ok((webhook, credentials)) => {
                    if credentials {
                        sink.warn(
                            n.webhook.pos,
                            Problem::LiteralSecret {
                                what: "credential in a webhook URL",
                            },
                        );
                    }
                    webhook
                }
                Err(reason) => {
                    sink.error(n.webhook.pos, Problem::WebhookUrl { reason });
                    return None;
                }
            };
            let mut on = n.on.clone().unwrap_or_else(|| NotifyEvent::ALL.to_vec());
            let mut seen = std::collections::HashSet::new();
            on.retain(|e| seen.insert(*e));
            Some(Notify {
                webhook,
                format: n.format.unwrap_or_default(),
                on,
                pos: n.webhook.pos,
            })
        })
        .collect()
}

/// The webhook, and whether its literal URL holds a credential in clear
/// (a user and password, or a token in the query).
fn webhook(text: &str) -> Result<(Webhook, bool), &'static str> {
    if let Some(name) = secret_reference(text) {
        return Ok((Webhook::Secret(name.to_string()), false));
    }
    if text.contains("{{") || text.contains("{%") {
        return Err("a template other than a secret reference is not allowed here");
    }
    let uri = http_url(text)?;
    let Some(authority) = uri.authority() else {
        return Err("the URL names no host");
    };
    let credential_param = |param: &str| {
        let name = param.split('=').next().unwrap_or("").to_ascii_lowercase();
        [
            "token", "key", "sig", "secret", "password", "pass", "auth", "code",
        ]
        .iter()
        .any(|w| name.contains(w))
    };
    let credentials = authority.as_str().contains('@')
        || uri
            .query()
            .is_some_and(|q| q.split('&').any(credential_param));
    Ok((Webhook::Url(text.trim().to_string()), credentials))
}

/// `text` as a whole http(s) URL naming a host; why not, in words that do
/// not repeat it (it may be a secret's value).
pub fn http_url(text: &str) -> Result<ureq::http::Uri, &'static str> {
    let uri: ureq::http::Uri = text.trim().parse().map_err(|_| "this is not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("the scheme is not http or https");
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err("the URL names no host");
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_a_secret_reference_or_a_whole_http_url() {
        assert_eq!(
            webhook("{{ secret.CHAT }}"),
            Ok((Webhook::Secret("CHAT".into()), false))
        );
        assert_eq!(
            webhook("https://chat.example/hooks/abc"),
            Ok((Webhook::Url("https://chat.example/hooks/abc".into()), false))
        );
        assert!(webhook("https://u:p@chat.example/x").unwrap().1);
        assert!(webhook("https://chat.example/x?api_key=1").unwrap().1);
        assert!(!webhook("https://chat.example/x?channel=dr").unwrap().1);
        assert!(webhook("https://{{ vars.host }}/x").is_err());
        assert!(webhook("ftp://chat.example/x").is_err());
        assert!(webhook("chat.example/x").is_err());
        assert!(webhook("{{ secret.A }}{{ secret.B }}").is_err());
    }
}
