//! What a row of a leads CSV is: the file read as a stream of records (UTF-8 with or without a
//! BOM; comma, semicolon or tab, detected from the first line; quoted fields with embedded
//! newlines), its header matched case-insensitively against the known columns and their
//! aliases, and each row checked into a [`LeadRow`] or a [`RowError`] naming the row, column,
//! value and a code. One bad row never stops the file; a file that is not a CSV with a phone
//! column is an [`ImportError`] before any row is read.
//!
//! Cells are kept as the text they are: a cell starting with `=`, `+`, `-` or `@` is never
//! evaluated here, and exports must escape it (see docs/decisions.md).

use crate::domain::phone_zones;
use crate::domain::{E164, Email, TimeZone};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// Most columns a row may have.
pub const MAX_COLUMNS: usize = 200;
/// Longest field, in bytes.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
/// Longest row, in bytes (every field together): a lead must fit a DynamoDB item, and an
/// import commits up to 99 of them in one transaction (4 MB at most).
pub const MAX_ROW_BYTES: usize = 24 * 1024;
/// Bytes looked at to tell the delimiter and whether the file is text.
const SNIFF_BYTES: usize = 64 * 1024;

/// The known columns, each with the header names that mean it (compared lowercased, with
/// spaces and dashes read as `_`).
const COLUMNS: &[(Column, &[&str])] = &[
    (
        Column::Phone,
        &[
            "phone",
            "phone_number",
            "phonenumber",
            "mobile",
            "mobile_phone",
            "cell",
            "telephone",
            "tel",
            "number",
            "phone_e164",
            // Portuguese and Spanish, the languages of the product's first markets.
            "telefone",
            "celular",
            "fone",
            "whatsapp",
            "telefono",
            "teléfono",
            "movil",
            "móvil",
        ],
    ),
    (
        Column::FirstName,
        &[
            "first_name",
            "firstname",
            "given_name",
            "first",
            "primeiro_nome",
        ],
    ),
    (
        Column::LastName,
        &[
            "last_name",
            "lastname",
            "surname",
            "family_name",
            "last",
            "sobrenome",
            "apellido",
            "apellidos",
        ],
    ),
    (
        Column::Name,
        &[
            "name",
            "full_name",
            "fullname",
            "contact_name",
            "contact",
            "nome",
            "nome_completo",
            "nombre",
        ],
    ),
    (
        Column::Email,
        &["email", "e_mail", "email_address", "mail", "correo"],
    ),
    (
        Column::Timezone,
        &[
            "timezone",
            "time_zone",
            "tz",
            "fuso_horario",
            "zona_horaria",
        ],
    ),
    (
        Column::ExternalId,
        &["external_id", "externalid", "id", "crm_id", "customer_id"],
    ),
];

/// A column the importer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Phone,
    FirstName,
    LastName,
    Name,
    Email,
    Timezone,
    ExternalId,
}

/// Why a file cannot be imported at all (the job fails with this; nothing is created).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not CSV text: {0}")]
    NotText(String),
    #[error("the header has no phone column (one of: phone, phone_number, mobile, telephone, …)")]
    NoPhoneColumn,
    #[error("the header has {0} columns; at most {MAX_COLUMNS} are read")]
    TooWide(usize),
    #[error("the file could not be read: {0}")]
    Unreadable(String),
}

/// A row that was not imported, as `GET /leads/import/{id}/errors` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row's number in the file, the header being row 1.
    pub row: u64,
    /// The header name of the column at fault (empty for the row as a whole).
    pub column: String,
    /// The value at fault, cut to 200 characters.
    pub value: String,
    /// `invalid_phone`, `invalid_email`, `invalid_timezone`, `too_many_columns`,
    /// `field_too_long`, `row_too_long`, `duplicate_in_file`, `missing_phone`,
    /// `unreadable_row`.
    pub code: String,
    pub message: String,
}

/// A row that reads as a lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadRow {
    /// The row's number in the file, the header being row 1.
    pub row: u64,
    pub phone_e164: E164,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `name`, or first and last joined when only those were given.
    pub name: Option<String>,
    pub email: Option<Email>,
    /// The row's `timezone`, when given.
    pub timezone: Option<TimeZone>,
    /// The row's `timezone` when given, else the number's candidate zones.
    pub timezones: Vec<TimeZone>,
    pub external_id: Option<String>,
    /// Every other column with a value, by header name.
    pub attributes: BTreeMap<String, String>,
}

/// The header as understood: where each known column is, and the rest by name.
#[derive(Clone, Debug)]
pub struct Header {
    names: Vec<String>,
    known: Vec<Option<Column>>,
}

impl Header {
    /// The header name of `column`, if the file has it.
    pub fn name_of(&self, column: Column) -> Option<&str> {
        self.known
            .iter()
            .position(|k| *k == Some(column))
            .map(|i| self.names[i].as_str())
    }

    /// Reads `record` as the header; the first column matching a known column wins it.
    pub fn parse(record: &csv::StringRecord) -> Result<Self, ImportError> {
        if record.len() > MAX_COLUMNS {
            return Err(ImportError::TooWide(record.len()));
        }
        let mut known = Vec::with_capacity(record.len());
        let mut taken = Vec::new();
        let names: Vec<String> = record.iter().map(|n| n.trim().to_owned()).collect();
        for name in &names {
            let norm = name.to_lowercase().replace([' ', '-'], "_");
            let column = COLUMNS
                .iter()
                .find(|(_, aliases)| aliases.contains(&norm.as_str()))
                .map(|(c, _)| *c)
                .filter(|c| !taken.contains(c));
            if let Some(c) = column {
                taken.push(c);
            }
            known.push(column);
        }
        if !taken.contains(&Column::Phone) {
            return Err(ImportError::NoPhoneColumn);
        }
        Ok(Self { names, known })
    }

    /// Checks data row `row` (`record`), reading national numbers in `region`.
    pub fn row(
        &self,
        row: u64,
        record: &csv::StringRecord,
        region: Option<&str>,
    ) -> Result<LeadRow, RowError> {
        let error = |column: &str, value: &str, code: &str, message: String| RowError {
            row,
            column: column.to_owned(),
            value: value.chars().take(200).collect(),
            code: code.to_owned(),
            message,
        };
        if record.len() > MAX_COLUMNS {
            return Err(error(
                "",
                "",
                "too_many_columns",
                format!(
                    "the row has {} columns; at most {MAX_COLUMNS}",
                    record.len()
                ),
            ));
        }
        if record.as_slice().len() > MAX_ROW_BYTES {
            return Err(error(
                "",
                "",
                "row_too_long",
                format!("the row is longer than {MAX_ROW_BYTES} bytes"),
            ));
        }
        let mut lead = Fields::default();
        let mut phone = None;
        for (i, raw) in record.iter().enumerate() {
            let header = self.names.get(i).map_or("", String::as_str);
            if raw.len() > MAX_FIELD_BYTES {
                return Err(error(
                    header,
                    raw,
                    "field_too_long",
                    format!("longer than {MAX_FIELD_BYTES} bytes"),
                ));
            }
            let value = raw.trim();
            if value.is_empty() {
                continue;
            }
            match self.known.get(i).copied().flatten() {
                Some(Column::Phone) => {
                    let parsed = E164::parse_in(value, region).map_err(|e| {
                        error(
                            header,
                            value,
                            "invalid_phone",
                            format!("the phone number {e}"),
                        )
                    })?;
                    phone = Some(parsed);
                }
                Some(Column::FirstName) => lead.first_name = Some(value.to_owned()),
                Some(Column::LastName) => lead.last_name = Some(value.to_owned()),
                Some(Column::Name) => lead.name = Some(value.to_owned()),
                Some(Column::Email) => {
                    let email = Email::parse(value).map_err(|e| {
                        error(header, value, "invalid_email", format!("the email {e}"))
                    })?;
                    lead.email = Some(email);
                }
                Some(Column::Timezone) => {
                    let zone = TimeZone::parse(value)
                        .map_err(|e| error(header, value, "invalid_timezone", e))?;
                    lead.timezone = Some(zone);
                }
                Some(Column::ExternalId) => lead.external_id = Some(value.to_owned()),
                None if !header.is_empty() => {
                    lead.attributes.insert(header.to_owned(), value.to_owned());
                }
                None => {}
            }
        }
        let Some(phone_e164) = phone else {
            return Err(error(
                "phone",
                "",
                "missing_phone",
                "the row has no phone number".into(),
            ));
        };
        let timezones = match &lead.timezone {
            Some(zone) => vec![zone.clone()],
            None => phone_zones::candidates(&phone_e164),
        };
        let name = lead.name.or_else(|| {
            let parts: Vec<&str> = [lead.first_name.as_deref(), lead.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        Ok(LeadRow {
            row,
            phone_e164,
            first_name: lead.first_name,
            last_name: lead.last_name,
            name,
            email: lead.email,
            timezone: lead.timezone,
            timezones,
            external_id: lead.external_id,
            attributes: lead.attributes,
        })
    }
}

/// A row's values while it is read.
#[derive(Default)]
struct Fields {
    first_name: Option<String>,
    last_name: Option<String>,
    name: Option<String>,
    email: Option<Email>,
    timezone: Option<TimeZone>,
    external_id: Option<String>,
    attributes: BTreeMap<String, String>,
}

/// The file as records: the BOM skipped, the delimiter detected, the header read.
pub struct Rows<R: Read> {
    header: Header,
    records: csv::Reader<BufReader<R>>,
    /// The row number after the last record read (the header is row 1).
    next_row: u64,
    /// Lines end with CRLF: the reader then places each record after the first at the `\n`
    /// that ends the line before it, one line early.
    crlf: bool,
}

impl<R: Read> std::fmt::Debug for Rows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("header", &self.header)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Rows<R> {
    /// Opens `input`: checks it is text, detects the delimiter, reads the header.
    pub fn open(input: R) -> Result<Self, ImportError> {
        let mut buffered = BufReader::with_capacity(SNIFF_BYTES, input);
        let sample = buffered
            .fill_buf()
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        let sample = sample
            .strip_prefix(b"\xEF\xBB\xBF".as_slice())
            .unwrap_or(sample)
            .to_vec();
        if sample.iter().all(u8::is_ascii_whitespace) {
            return Err(ImportError::Empty);
        }
        if sample.contains(&0) {
            return Err(ImportError::NotText(
                "it holds binary data (NUL bytes)".into(),
            ));
        }
        // The sample may end inside a character; only a failure before its last 3 bytes counts.
        if let Err(e) = std::str::from_utf8(&sample)
            && e.valid_up_to() + 4 < sample.len()
        {
            return Err(ImportError::NotText(format!(
                "it is not UTF-8 (byte {})",
                e.valid_up_to()
            )));
        }
        let delimiter = delimiter(&sample);
        let crlf = sample
            .iter()
            .position(|&b| b == b'\n')
            .is_some_and(|i| i > 0 && sample[i - 1] == b'\r');
        if buffered
            .fill_buf()
            .map_err(|e| ImportError::Unreadable(e.to_string()))?
            .starts_with(b"\xEF\xBB\xBF")
        {
            buffered.consume(3);
        }
        let mut records = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(buffered);
        let mut first = csv::StringRecord::new();
        let got = records
            .read_record(&mut first)
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        if !got {
            return Err(ImportError::Empty);
        }
        Ok(Self {
            header: Header::parse(&first)?,
            records,
            next_row: 2,
            crlf,
        })
    }

    /// The header as understood.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next data row and its number, skipping blank lines; `None` at the end. A row that
    /// is not valid UTF-8 or not CSV is a [`RowError`] (`unreadable_row`), not the end.
    pub fn next_record(&mut self) -> Option<(u64, Result<csv::StringRecord, RowError>)> {
        loop {
            let mut record = csv::StringRecord::new();
            match self.records.read_record(&mut record) {
                Ok(false) => return None,
                Ok(true) => {
                    // The line the record starts on is its row number (a quoted newline
                    // makes a record span lines; the next one's number follows the file).
                    let row = record
                        .position()
                        .map_or(self.next_row, |p| p.line() + u64::from(self.crlf));
                    self.next_row = row + 1;
                    if record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    return Some((row, Ok(record)));
                }
                Err(e) => {
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return None;
                    }
                    let row = e
                        .position()
                        .map_or(self.next_row, |p| p.line() + u64::from(self.crlf));
                    self.next_row = row + 1;
                    return Some((
                        row,
                        Err(RowError {
                            row,
                            column: String::new(),
                            value: String::new(),
                            code: "unreadable_row".into(),
                            message: e.to_string(),
                        }),
                    ));
                }
            }
        }
    }
}

/// The delimiter of the first line of `sample`: the most frequent of `,`, `;` and tab outside
/// quotes (comma on a tie or none).
fn delimiter(sample: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in sample {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                    c.1 += 1;
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .fold(
            (b',', 0),
            |best, &(d, n)| if n > best.1 { (d, n) } else { best },
        )
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        csv: &[u8],
        region: Option<&str>,
    ) -> Result<Vec<Result<LeadRow, RowError>>, ImportError> {
        let mut rows = Rows::open(csv)?;
        let mut out = Vec::new();
        while let Some((row, record)) = rows.next_record() {
            out.push(record.and_then(|r| rows.header().row(row, &r, region)));
        }
        Ok(out)
    }

    #[test]
    fn rows_in_any_of_the_three_delimiters_with_a_bom_and_aliases_read_alike() {
        // GIVEN the same two leads as comma, semicolon (with a BOM) and tab files
        let files: [&[u8]; 3] = [
            b"Phone Number,First Name,Last Name,E-mail,Plan\n+14155550123,Ada,Lovelace,ada@example.com,gold\n\"(415) 555-0124\",\"Grace\",Hopper,,\"multi\nline\"\n",
            b"\xEF\xBB\xBFmobile;name;email;plan\n+14155550123;Ada Lovelace;ada@example.com;gold\n4155550124;Grace Hopper;;\"multi\nline\"\n",
            b"telephone\tfirst_name\tlast_name\tplan\n+1 415 555 0123\tAda\tLovelace\tgold\n415-555-0124\tGrace\tHopper\t\"multi\nline\"\n",
        ];
        for file in files {
            // WHEN read with US as the default region
            let rows = read(file, Some("US")).unwrap();
            // THEN both rows are leads with E.164 numbers, names, the plan kept as an attribute
            let leads: Vec<LeadRow> = rows.into_iter().map(Result::unwrap).collect();
            assert_eq!(leads.len(), 2);
            assert_eq!(leads[0].phone_e164.as_str(), "+14155550123");
            assert_eq!(leads[0].name.as_deref(), Some("Ada Lovelace"));
            assert_eq!(
                leads[0].attributes.values().next().map(String::as_str),
                Some("gold")
            );
            assert_eq!(leads[0].timezones[0].as_str(), "America/Los_Angeles");
            assert_eq!(leads[1].phone_e164.as_str(), "+14155550124");
            assert_eq!(leads[1].row, 3);
            assert_eq!(
                leads[1].attributes.values().next().map(String::as_str),
                Some("multi\nline")
            );
        }
    }

    #[test]
    fn row_numbers_are_file_lines_with_crlf_and_a_bom() {
        // GIVEN files with CRLF line ends, with and without a BOM
        for file in [
            b"phone\r\n+14155550123\r\n+14155550124\r\nnope\r\n".as_slice(),
            b"\xEF\xBB\xBFphone\r\n+14155550123\r\n+14155550124\r\nnope\r\n".as_slice(),
        ] {
            // WHEN read
            let rows = read(file, Some("US")).unwrap();
            // THEN rows are numbered as a spreadsheet shows them
            assert_eq!(rows[1].as_ref().unwrap().row, 3);
            assert_eq!(rows[2].as_ref().unwrap_err().row, 4);
        }
    }

    #[test]
    fn bad_rows_are_errors_naming_row_column_and_code_and_the_rest_still_reads() {
        // GIVEN a file with a bad phone, a bad email, a bad zone, a formula cell and a good row
        let file = b"phone,email,timezone,note\nnot-a-number,,,\n+14155550123,nope,,\n+14155550124,,Mars/Base,\n+14155550125,,Europe/Paris,=cmd|' /C calc'!A0\n";
        let rows = read(file, Some("US")).unwrap();
        let codes: Vec<(u64, String, String)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| (e.row, e.column.clone(), e.code.clone()))
            .collect();
        assert_eq!(
            codes,
            [
                (2, "phone".to_owned(), "invalid_phone".to_owned()),
                (3, "email".to_owned(), "invalid_email".to_owned()),
                (4, "timezone".to_owned(), "invalid_timezone".to_owned())
            ]
        );
        // THEN the good row's zone is the one given, and the formula is kept as text
        let good = rows[3].as_ref().unwrap();
        assert_eq!(good.timezones[0].as_str(), "Europe/Paris");
        assert_eq!(good.attributes["note"], "=cmd|' /C calc'!A0");
    }

    #[test]
    fn files_that_are_not_lead_csvs_fail_whole() {
        assert_eq!(read(b"", None).unwrap_err(), ImportError::Empty);
        assert_eq!(
            read(b"first,last\nAda,Lovelace\n", None).unwrap_err(),
            ImportError::NoPhoneColumn
        );
        assert!(matches!(
            read(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", None).unwrap_err(),
            ImportError::NotText(_)
        ));
        let wide = (0..201)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            read(format!("phone,{wide}\n").as_bytes(), None).unwrap_err(),
            ImportError::TooWide(202)
        );
    }

    #[test]
    fn national_numbers_need_a_region_and_fields_have_a_size_limit() {
        // GIVEN a national number without a default region, and an oversized field
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let file = format!("phone,note\n0142685300,\n+33142685300,{long}\n");
        let rows = read(file.as_bytes(), None).unwrap();
        assert_eq!(rows[0].as_ref().unwrap_err().code, "invalid_phone");
        assert_eq!(rows[1].as_ref().unwrap_err().code, "field_too_long");
        // AND with France as the region the national number reads
        let rows = read(b"phone\n01 42 68 53 00\n", Some("FR")).unwrap();
        assert_eq!(
            rows[0].as_ref().unwrap().phone_e164.as_str(),
            "+33142685300"
        );
    }
}
