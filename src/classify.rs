//! Exit classes of the error types whose modules are being reshaped in parallel branches.
//! Each impl moves next to its type once those branches have landed.

use crate::exit::{Classify, Exit};

impl Classify for crate::manifests::ManifestError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}
