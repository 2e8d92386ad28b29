pub mod hostile;
pub mod zips;
