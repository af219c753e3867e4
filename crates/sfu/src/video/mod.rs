pub mod allocation;
pub mod dynacast;
