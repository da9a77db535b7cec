//! Policy rules as an on-call engineer reads them (issue 12): soak, progression, rollback,
//! approvals without a list, triggers, groups, promotion paths, dry runs and refused pushes.

