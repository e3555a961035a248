//! The two credentials no request carries: the operator at the server's command line
//! (`qahub …`), who may do anything in any workspace, and the server acting on its own by
//! a rule already decided (retiring a rotated token, revoking a reported leak, noting a
//! use after expiry). The audit log names them apart: "qahub CLI" and
//! "QA Hub (automatic)".

use crate::error::AppError;

/// The server and a minting trust policy ask no rule for anything: a rule asked on their
/// behalf refuses.
pub fn nobody_asked() -> AppError {
    AppError::forbidden("Nobody asked for this: the server acts only on rules already decided.")
}
