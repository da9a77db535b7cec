//! Exit classes of the error types whose modules are being reshaped in parallel branches.
//! Each impl moves next to its type once those branches have landed.

use crate::exit::{Classify, Exit};

impl Classify for crate::archive::ArchiveError {
    fn exit(&self) -> Exit {
        Exit::Verify
    }
}

impl Classify for crate::oci::OciError {
    fn exit(&self) -> Exit {
        if self.is_verification() {
            Exit::Verify
        } else if self.is_remote() {
            Exit::Remote
        } else {
            Exit::Other
        }
    }
}

impl Classify for crate::oci::reference::ReferenceError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

impl Classify for crate::pointer::PointerError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

impl Classify for crate::policy::PolicyError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

impl Classify for crate::approvals::ApprovalError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

impl Classify for crate::manifests::ManifestError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

impl Classify for crate::gitops::register::RegisterError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}
