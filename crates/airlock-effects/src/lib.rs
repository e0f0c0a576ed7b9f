//! Live HTTP and SMTP for airlock's approved actions. See the README.

use std::io::Read;

use airlock_model::action::Body;
use airlock_model::action::effects::{Effects, Failure, HttpRequest, HttpResponse, OutgoingEmail};
use airlock_model::action::settings::{Smtp, Tls};

/// Responses are kept for their digest; past this they are cut.
const MAX_RESPONSE: u64 = 16 << 20;

/// The real network.
pub struct Live;

impl Effects for Live {
    fn validate(&self, body: &Body) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        match body {
            Body::Http(h) => {
                let mut builder = ureq::http::Request::builder()
                    .method(h.method.as_str())
                    .uri(h.url.as_str());
                for (name, value) in &h.headers {
                    // As bytes: since http 1.6 a header value given as a
                    // string must be ASCII; as bytes it is sent as written.
                    builder = builder.header(name.as_str(), value.as_bytes());
                }
                if let Err(e) = builder.body(()) {
                    problems.push(format!("the HTTP client refuses the request: {e}"));
                }
            }
            Body::Email(e) => {
                for addr in std::iter::once(&e.from).chain(&e.to).chain(&e.cc) {
                    if let Err(err) = addr.parse::<lettre::message::Mailbox>() {
                        problems.push(format!(
                            "the mail client refuses the address `{}`: {err}",
                            addr.escape_debug()
                        ));
                    }
                }
            }
            Body::GitPush(_) | Body::Command(_) | Body::Mcp(_) => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, Failure> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(request.timeout))
            .build()
            .into();
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let body = request.body.clone().unwrap_or_default();
        let built = builder.body(body).map_err(|e| Failure {
            message: format!("not sent: the request is malformed: {e}"),
            maybe_delivered: false,
        })?;
        let mut response = agent.run(built).map_err(|e| Failure {
            message: format!("HTTP request failed: {e}"),
            maybe_delivered: !matches!(
                e,
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound
            ),
        })?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(MAX_RESPONSE)
            .read_to_end(&mut body);
        Ok(HttpResponse { status, body })
    }

    fn email(
        &self,
        server: &Smtp,
        credentials: Option<(String, String)>,
        message: &OutgoingEmail,
    ) -> Result<String, Failure> {
        use lettre::message::header::ContentType;
        use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{Message, SmtpTransport, Transport};

        let not_sent = |what: String| Failure {
            message: format!("not sent: {what}"),
            maybe_delivered: false,
        };
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| not_sent(format!("`{a}` is not an address lettre accepts: {e}")))
        };
        let mut builder = Message::builder()
            .from(mailbox(&message.from)?)
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}>", message.message_id)));
        for to in &message.to {
            builder = builder.to(mailbox(to)?);
        }
        for cc in &message.cc {
            builder = builder.cc(mailbox(cc)?);
        }
        let built = if message.attachments.is_empty() {
            builder
                .header(ContentType::TEXT_PLAIN)
                .body(message.body.clone())
        } else {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(message.body.clone()));
            for (name, bytes) in &message.attachments {
                let kind = ContentType::parse("application/octet-stream")
                    .map_err(|e| not_sent(e.to_string()))?;
                parts = parts.singlepart(Attachment::new(name.clone()).body(bytes.clone(), kind));
            }
            builder.multipart(parts)
        }
        .map_err(|e| not_sent(format!("the message cannot be built: {e}")))?;

        let transport = match server.tls {
            Tls::Starttls => SmtpTransport::starttls_relay(&server.host),
            Tls::Tls => SmtpTransport::relay(&server.host),
            Tls::None => Ok(SmtpTransport::builder_dangerous(&server.host)),
        }
        .map_err(|e| not_sent(format!("cannot set up TLS for {}: {e}", server.host)))?
        .port(server.port)
        .timeout(Some(server.timeout));
        let transport = match credentials {
            Some((user, password)) => transport.credentials(Credentials::new(user, password)),
            None => transport,
        }
        .build();
        match transport.send(&built) {
            Ok(reply) => Ok(format!(
                "{} {}",
                reply.code(),
                reply.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) => {
                // A refusal from the server means it did not take the
                // message; a connection never made sent nothing. Anything
                // else may have happened after the message was sent.
                let refused_connection = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
                Err(Failure {
                    message: format!("SMTP via {}:{} failed: {e}", server.host, server.port),
                    maybe_delivered: !(e.is_permanent() || e.is_transient() || refused_connection),
                })
            }
        }
    }
}
