//! The core driven without any network: str0m clients exchange datagrams with one or two cores
//! in memory, on a simulated clock, with the rooms' media links orchestrating the cores as the
//! server's rooms do.

mod bandwidth;
mod clients;
mod codecs;
mod fan_out;
mod forwarding;
mod frames;
mod harness;
mod hostile;
mod resend;
mod simulcast;
mod slots;
mod spread;
mod tcp;
