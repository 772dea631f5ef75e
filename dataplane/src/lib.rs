pub mod packet;
pub mod route;
