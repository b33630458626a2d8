mod auth;
mod churn;
mod client;
mod csv_export;
mod faults;
mod generator;
mod helpers;
mod rest;
