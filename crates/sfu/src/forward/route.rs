//! Which payload type a publisher's packets take to one subscriber: matched by codec from the
//! publisher's session to the subscriber's, and RED (RFC 2198) passed on, rewritten or unwrapped.

use str0m::format::PayloadParams;
use str0m::media::Pt;

/// How a publisher's packets on one payload type reach one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The payload as it is, on the subscriber's payload type for the codec.
    Plain { pt: Pt },
    /// RED to a subscriber who negotiated RED: the payload on their RED payload type, with the
    /// blocks' payload type rewritten from the publisher's primary (`from`) to theirs (`to`).
    Red { pt: Pt, from: u8, to: u8 },
    /// RED to a subscriber without RED: the primary block on their payload type for the codec,
    /// preceded by frames the redundancy recovers.
    Unwrap { pt: Pt },
    /// A plain packet to a slot of a subscriber who negotiated RED: wrapped in RED (a primary
    /// block alone, of payload type `inner`) on their RED payload type, so that the slot keeps
    /// one payload type whichever speaker it carries.
    Wrap { pt: Pt, inner: u8 },
}

impl Route {
    /// The route for packets of `src` (a RED packet if `red`) to a session whose codecs are
    /// `dst`; `accepted` are the payload types the subscriber's m-line accepts (all if empty).
    pub fn find(
        src: &PayloadParams,
        red: bool,
        dst: Option<&PayloadParams>,
        accepted: &[Pt],
    ) -> Option<Route> {
        let dst = dst?;
        if !accepted.is_empty() && !accepted.contains(&dst.pt()) {
            return None;
        }
        Some(match (red, dst.red()) {
            (false, _) => Route::Plain { pt: dst.pt() },
            (true, Some(pt)) => Route::Red {
                pt,
                from: *src.pt(),
                to: *dst.pt(),
            },
            (true, None) => Route::Unwrap { pt: dst.pt() },
        })
    }

    /// As [`Route::find`], for a slot: a subscriber who negotiated RED gets RED from every
    /// source (plain packets wrapped), one who did not gets plain packets (RED unwrapped).
    pub fn find_steady(
        src: &PayloadParams,
        red: bool,
        dst: Option<&PayloadParams>,
        accepted: &[Pt],
    ) -> Option<Route> {
        let route = Route::find(src, red, dst, accepted)?;
        Some(match (route, dst.and_then(|d| d.red())) {
            (Route::Plain { pt }, Some(red_pt)) => Route::Wrap {
                pt: red_pt,
                inner: *pt,
            },
            (route, _) => route,
        })
    }
}
