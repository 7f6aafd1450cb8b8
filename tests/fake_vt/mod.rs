//! A fake VirusTotal API v3 server for tests and benchmarks.
//!
//! [`FakeVt::start`] listens on 127.0.0.1 and serves, over plain HTTP/1.1 with
//! keep-alive, `GET /api/v3/ip_addresses/{ip}`, the address's relationship
//! lists page by page (`/ip_addresses/{ip}/{relationship}` and
//! `/ip_addresses/{ip}/relationships/{relationship}`, see [`relationships`])
//! and `GET /api/v3/users/{id}/overall_quotas`. It authenticates the `x-apikey`
//! header and enforces per-key quotas: a sliding 60-second window plus daily
//! and monthly budgets. It gzip-compresses 200 bodies for clients that request
//! it the way VirusTotal requires. A [`FaultPolicy`] chooses faults per
//! request: error statuses, resets, truncated or garbage bodies, stalls and
//! delays. Documents are generated deterministically from a real
//! response, so a test predicts them with [`expected_document`]. [`Stats`]
//! counts what the server saw and sent.
//!
//! The server uses raw `tokio` sockets and `httparse` instead of an HTTP
//! framework so that faults can break the protocol at the byte level. It runs
//! its own runtime on a background thread, so synchronous tests that run the
//! product as a subprocess can use it as well as async ones. The module
//! depends on nothing outside itself and is meant to be included with
//! `#[path = "…/fake_vt/mod.rs"] mod fake_vt;`.

// Each test binary that includes this module uses only part of its API,
// including the re-exports below.
#![allow(dead_code, unused_imports)]

mod document;
mod fault;
mod http;
pub mod relationships;
mod server;
mod state;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

pub use document::{DocumentFacts, document_facts, expected_document, expected_document_bytes};
pub use fault::{Fault, FaultPolicy, FaultRates, RequestInfo};
pub use relationships::{ENTERPRISE_ONLY, RELATIONSHIPS, encode_cursor, expected_related_item};
pub use state::{KeyQuota, QuotaRejections, QuotaWindow, RequestRecord, Stats};

/// The API key that [`FakeVtConfig::default`] accepts.
pub const TEST_KEY: &str = "test-key";

type NotFoundFn = dyn Fn(&IpAddr) -> bool + Send + Sync;

/// Settings of one server. Build it from `Default` and the `with_*` methods
/// or set the public fields directly.
#[derive(Clone)]
pub struct FakeVtConfig {
    /// Port on 127.0.0.1; 0 lets the OS choose one.
    pub port: u16,
    /// Accepted API keys and their allowances.
    pub keys: HashMap<String, KeyQuota>,
    /// Bodies served as they are for these canonical addresses, instead of
    /// generated documents.
    pub documents: HashMap<String, Vec<u8>>,
    /// Canonical addresses that get 404 `NotFoundError`.
    pub not_found: HashSet<String>,
    /// Addresses for which this returns true get 404 as well. The default is
    /// [`is_documentation_address`].
    pub not_found_when: Arc<NotFoundFn>,
    pub faults: FaultPolicy,
    /// Delay before every response, faulted or not.
    pub latency: Duration,
    /// Length of the sliding window of `KeyQuota::per_minute`. Keep the real
    /// 60 s when testing a client; shorten it only to test the server itself.
    pub quota_minute: Duration,
    /// Worker threads of the server's runtime.
    pub worker_threads: usize,
    /// Maximum number of [`RequestRecord`]s kept in [`Stats::requests`]. Past
    /// it requests are only counted, so long benchmarks keep memory bounded.
    pub max_recorded_requests: usize,
    /// Items every address has, per relationship name. Relationships not
    /// listed have an empty list.
    pub relationship_items: HashMap<String, usize>,
    /// Most items on one relationship page, whatever `limit` asks for.
    pub relationship_page_cap: usize,
    /// Positions (0-based) of items that come back as an error in place of
    /// the object, per relationship name.
    pub relationship_item_errors: HashMap<String, HashSet<usize>>,
    /// Keys that may read the Enterprise-only relationships
    /// ([`ENTERPRISE_ONLY`]); every other key gets 403 `ForbiddenError`.
    pub enterprise_keys: HashSet<String>,
    /// Leaves `meta` out of relationship pages, so the next cursor is only in
    /// `links.next`.
    pub cursor_in_links_only: bool,
}

impl Default for FakeVtConfig {
    /// [`TEST_KEY`] without quota, no faults, no latency, any free port, empty
    /// relationship lists and pages of at most 10 items.
    fn default() -> Self {
        FakeVtConfig {
            port: 0,
            keys: HashMap::from([(TEST_KEY.to_string(), KeyQuota::unlimited())]),
            documents: HashMap::new(),
            not_found: HashSet::new(),
            not_found_when: Arc::new(is_documentation_address),
            faults: FaultPolicy::none(),
            latency: Duration::ZERO,
            quota_minute: Duration::from_secs(60),
            worker_threads: 2,
            max_recorded_requests: 100_000,
            relationship_items: HashMap::new(),
            relationship_page_cap: 10,
            relationship_item_errors: HashMap::new(),
            enterprise_keys: HashSet::new(),
            cursor_in_links_only: false,
        }
    }
}

impl FakeVtConfig {
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Adds `key`, or replaces its allowances.
    pub fn with_key(mut self, key: &str, quota: KeyQuota) -> Self {
        self.keys.insert(key.to_string(), quota);
        self
    }

    /// Sets the allowances of [`TEST_KEY`].
    pub fn with_quota(self, quota: KeyQuota) -> Self {
        self.with_key(TEST_KEY, quota)
    }

    /// Serves `body` as it is for `ip` (canonicalised when it parses).
    pub fn with_document(mut self, ip: &str, body: impl Into<Vec<u8>>) -> Self {
        self.documents.insert(canonical(ip), body.into());
        self
    }

    /// Adds `ip` (canonicalised when it parses) to the not-found set.
    pub fn with_not_found(mut self, ip: &str) -> Self {
        self.not_found.insert(canonical(ip));
        self
    }

    /// Replaces the not-found predicate.
    pub fn with_not_found_when(
        mut self,
        predicate: impl Fn(&IpAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.not_found_when = Arc::new(predicate);
        self
    }

    pub fn with_faults(mut self, faults: FaultPolicy) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Gives every address `items` items of `relationship`.
    pub fn with_relationship(mut self, relationship: &str, items: usize) -> Self {
        self.relationship_items
            .insert(relationship.to_string(), items);
        self
    }

    /// Sets the most items on one relationship page.
    pub fn with_relationship_page_cap(mut self, cap: usize) -> Self {
        self.relationship_page_cap = cap;
        self
    }

    /// Makes item `position` of `relationship` come back as an error.
    pub fn with_item_error(mut self, relationship: &str, position: usize) -> Self {
        self.relationship_item_errors
            .entry(relationship.to_string())
            .or_default()
            .insert(position);
        self
    }

    /// Lets `key` read the Enterprise-only relationships.
    pub fn with_enterprise_key(mut self, key: &str) -> Self {
        self.enterprise_keys.insert(key.to_string());
        self
    }

    /// Puts the next cursor only in `links.next`, with no `meta`.
    pub fn with_cursor_in_links_only(mut self) -> Self {
        self.cursor_in_links_only = true;
        self
    }
}

fn canonical(ip: &str) -> String {
    ip.parse::<IpAddr>()
        .map_or_else(|_| ip.to_string(), |addr| addr.to_string())
}

/// Returns true for 192.0.2.0/24 (TEST-NET-1, RFC 5737) and 2001:db8::/32
/// (RFC 3849): the default not-found set, so a test gets 404s without
/// configuration by sending those addresses.
pub fn is_documentation_address(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..3] == [192, 0, 2],
        IpAddr::V6(v6) => v6.segments()[..2] == [0x2001, 0x0db8],
    }
}

/// A running server. Dropping it stops accepting, closes every connection and
/// joins the server thread.
pub struct FakeVt {
    address: SocketAddr,
    shared: Arc<server::Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeVt {
    /// Binds 127.0.0.1:`config.port` and starts serving on a background
    /// thread. Returns once the socket is bound, so [`FakeVt::url`] is usable
    /// at once.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound or the runtime cannot be built.
    pub fn start(config: FakeVtConfig) -> FakeVt {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .unwrap_or_else(|error| {
                panic!("fake_vt: binding 127.0.0.1:{} failed: {error}", config.port)
            });
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        listener
            .set_nonblocking(true)
            .expect("fake_vt: setting the listener non-blocking failed");

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("fake-vt")
            .enable_all()
            .build()
            .expect("fake_vt: building the tokio runtime failed");
        let shared = Arc::new(server::Shared::new(config));
        let (shutdown, shutdown_rx) = watch::channel(false);

        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-vt-server".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("fake_vt: registering the listener failed");
                    server::accept_loop(listener, task_shared, shutdown_rx).await;
                });
                // Connection tasks see the shutdown signal too; the timeout
                // only bounds the wait for one that is between two awaits.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("fake_vt: spawning the server thread failed");

        FakeVt {
            address,
            shared,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Returns the API root to give the client, `http://127.0.0.1:PORT/api/v3`.
    pub fn url(&self) -> String {
        format!("http://{}/api/v3", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Clears the counters, including the per-address attempt numbers that
    /// fault policies see. Quota usage is kept: see [`FakeVt::reset_quotas`].
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Forgets the requests counted against every key's allowances.
    pub fn reset_quotas(&self) {
        self.shared.reset_quotas();
    }
}

impl Drop for FakeVt {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
