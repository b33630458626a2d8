//! Stand-ins of the identity providers' APIs, following their public documentation, for
//! tests and `rostersync demo`: Google's Admin SDK Directory API with its JWT-bearer
//! token endpoint ([`google`]) and Microsoft Graph's users and delta with the Entra token
//! endpoint ([`entra`]). Each serves a list of accounts a test sets and changes, and can
//! throttle (429 with `Retry-After`) like the real services.

pub mod entra;
pub mod google;
