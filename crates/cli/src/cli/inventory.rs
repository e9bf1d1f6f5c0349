//! `steward inventory`: the AI inventory, as a table, CSV or JSON.

use clap::{Args, ValueEnum};

use super::Conn;

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// csv: RFC 4180 with a header row, for spreadsheets and auditors; json: the API's answer
    /// [default: a table, or JSON with --output json]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<InventoryFormat>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    Csv,
    Json,
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::InventoryFormat;
    use clap::Parser;

    #[test]
    fn the_inventory_takes_a_csv_or_json_format_and_nothing_else() {
        let cli = Cli::try_parse_from(["steward", "inventory", "--format", "csv"]).unwrap();
        let Command::Inventory(a) = cli.command else {
            panic!("not inventory")
        };
        assert_eq!(a.format, Some(InventoryFormat::Csv));
        assert!(Cli::try_parse_from(["steward", "inventory", "--format", "xml"]).is_err());
    }
}
