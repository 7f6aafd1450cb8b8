//! Tests of the input stage, split like the code they exercise.

mod address;
mod detect;
mod extract;
mod fixture;
mod fuzz;
mod hostile;
mod logs;
mod reader;
mod special;
mod table;
