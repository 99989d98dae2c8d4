//! The context cache and the IOTLB. Only present, successful results are
//! cached (CAP.CM is 0), and each is dropped by the invalidations whose
//! scope covers it.

use std::collections::HashMap;

use crate::qi::Scope;
use crate::walk::{Context, Page};

/// The most IOTLB entries kept. A guest can map as many pages as it
/// likes; when the IOTLB is full it is emptied (a real IOTLB evicts, and
/// CM=0 lets any entry go at any time).
pub const IOTLB_ENTRIES: usize = 4096;

/// Both caches.
#[derive(Debug, Default)]
pub struct Caches {
    contexts: HashMap<u16, Context>,
    pages: HashMap<(u16, u64), Page>,
}

impl Caches {
    /// The cached context entry of requester `rid`.
    pub fn context(&self, rid: u16) -> Option<Context> {
        self.contexts.get(&rid).copied()
    }

    /// Caches `ctx` for `rid`.
    pub fn put_context(&mut self, rid: u16, ctx: Context) {
        self.contexts.insert(rid, ctx);
    }

    /// The cached translation of the page at `iova` in `domain`.
    pub fn page(&self, domain: u16, iova: u64) -> Option<Page> {
        self.pages.get(&(domain, iova & !0xfff)).copied()
    }

    /// Caches `page` for `iova` in `domain`.
    pub fn put_page(&mut self, domain: u16, iova: u64, page: Page) {
        if self.pages.len() >= IOTLB_ENTRIES {
            self.pages.clear();
        }
        self.pages.insert((domain, iova & !0xfff), page);
    }

    /// Drops the context entries in `scope` (global, domain, or device
    /// with function mask; page scopes do not apply and drop nothing).
    pub fn invalidate_contexts(&mut self, scope: Scope) {
        match scope {
            Scope::Global => self.contexts.clear(),
            Scope::Domain(d) => self.contexts.retain(|_, c| c.domain != d),
            Scope::Device { sid, mask, .. } => {
                // Function Mask: ignore the low 1, 2 or 3 bits of the devfn.
                let ignore = (1u16 << mask.min(3)) - 1;
                self.contexts
                    .retain(|&rid, _| rid & !ignore != sid & !ignore);
            }
            Scope::Pages { .. } => {}
        }
    }

    /// Drops the IOTLB entries in `scope` (global, domain or pages).
    pub fn invalidate_pages(&mut self, scope: Scope) {
        match scope {
            Scope::Global => self.pages.clear(),
            Scope::Domain(d) | Scope::Device { domain: d, .. } => {
                self.pages.retain(|&(dom, _), _| dom != d)
            }
            Scope::Pages {
                domain,
                addr,
                order,
            } => {
                let len = 4096u64 << order.min(52);
                let end = addr.saturating_add(len);
                self.pages
                    .retain(|&(dom, a), _| dom != domain || a < addr || a >= end);
            }
        }
    }

    /// Entries cached: (contexts, pages).
    pub fn len(&self) -> (usize, usize) {
        (self.contexts.len(), self.pages.len())
    }

    /// Nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}
