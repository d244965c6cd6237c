//! Finding a page's records without parsing them, for selectors that would not change them.

use std::borrow::Cow;
use std::ops::Range;

use sluice_protocol::{AsSent, RecordScanner, SentEntry};

/// Where a page's records are, as sent, what the reference prints for each, and the top-level
/// fields asked for besides them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageAsSent {
    /// The page's records, in order.
    pub records: Vec<RecordAsSent>,
    /// The records classified [`AsSent::Respelled`], as the reference prints them, back to
    /// back. When they are most of the page, the records that print as sent are copied here
    /// too, so that the body can be dropped before the page is written.
    pub respelled: Vec<u8>,
    /// The byte range of each top-level field asked for that the body has (and of any whose
    /// name holds a `.`, which a template's `response.a.b` could also mean).
    pub fields: Vec<(String, Range<usize>)>,
    /// The records' top-level entries, when asked for (each record's own from its first byte,
    /// as printed: as sent or respelled). Records are then scanned for editing: their top-level
    /// nulls are kept, to be left out once edited.
    pub entries: Vec<SentEntry>,
}

/// One record of a [`PageAsSent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAsSent {
    /// Its byte range in the body.
    pub sent: Range<usize>,
    /// What the reference prints for it.
    pub class: AsSent,
    /// Its byte range in [`PageAsSent::respelled`], where it is printed from: always for
    /// [`AsSent::Respelled`], and for [`AsSent::Identical`] when most of the page was
    /// respelled (copied there as sent); empty otherwise.
    pub respelled: Range<usize>,
    /// Its top-level entries in [`PageAsSent::entries`], when they were asked for.
    pub entries: Range<usize>,
    /// It has the top-level keys of the record before it, as sent and in the same order (see
    /// [`RecordScanner::same_keys_as_last`]); false when that was not told.
    pub same_keys: bool,
    /// Where it has the watched key and its value, as printed (see
    /// [`RecordScanner::watched`]).
    pub watched: Option<SentEntry>,
}

/// Finds the records of `body`: the objects of the array reached by following the object keys
/// of `path` from the top-level object, and the top-level `fields`. `None` when the page is of
/// any other shape (not valid JSON, a key missing or repeated on the way, something else than
/// an array of objects at the end, a field that is also the path's first key), which the full
/// selector then handles.
///
/// Written by hand, in one pass that also classifies each record: a serde walk over raw values
/// followed by a classifying scan read every record twice, which cost as much as the rest of a
/// plain read (callgrind on `cargo xtask bench` scenario (a)).
pub(crate) fn page_as_sent(
    text: &str,
    path: &[String],
    fields: &[String],
    with_entries: bool,
    watch: Option<&str>,
    mut respelled: Vec<u8>,
    beside: Option<Beside<'_>>,
) -> Option<PageAsSent> {
    if fields.iter().any(|field| Some(field) == path.first()) {
        return None;
    }
    let body = text.as_bytes();
    let mut scanner = RecordScanner::for_str(text);
    // Records edited before they are printed keep their top-level nulls for the templates.
    scanner.for_editing(with_entries);
    // A key that cannot be watched is simply not located.
    scanner.watch(watch);
    let mut walk = PageWalk {
        body,
        at: 0,
        scanner,
        page: PageAsSent {
            respelled: {
                respelled.clear();
                respelled
            },
            ..PageAsSent::default()
        },
        with_entries,
        beside: beside.filter(|_| (SPLIT_FROM..=SPLIT_UP_TO).contains(&body.len())),
        first_record: 0,
    };
    walk.space();
    walk.follow(path, Some(fields))?;
    walk.space();
    (walk.at == body.len()).then_some(walk.page)
}

/// The most respelled bytes one page keeps (beyond, records are reprinted where they are
/// written): a page of records that all need respelling would otherwise be held twice.
const MAX_RESPELLED: usize = 32 << 20;

/// Runs the first function on another core while the second runs on this one, and returns
/// once both have: how a page's records are scanned in two halves. A function that runs them
/// one after the other will do.
pub type Beside<'f> = &'f (dyn Fn(&mut (dyn FnMut() + Send), &mut dyn FnMut()) + Sync);

/// Pages from this size have their records scanned in two halves, on two cores when
/// [`Beside`] has them: a smaller page takes less time to scan than to hand half of it over.
const SPLIT_FROM: usize = 64 << 10;

/// The records of a page scanned before it is split: it is, when most of them are respelled.
/// Those go through the general scan, at two to three times the quick pass's cost per byte,
/// and then the second core's half pays for handing it over; a page the quick pass takes is
/// scanned faster on one core (`cargo xtask bench` on 2 cores, where the API server and the
/// reader of the output share them: scenario (a) 7% slower when split; scenario (l), whose
/// orders are respelled, a seventh faster, on pages now past [`SPLIT_UP_TO`]).
const PROBED_RECORDS: usize = 16;

/// Pages up to this size only are scanned in halves: the second half's respelled records are
/// written apart before they are appended to the first's, half a page more held at once.
/// Scenario (l)'s pages of 2.3 MB read a seventh faster split but peaked 1 to 2 MB higher
/// (`cargo xtask bench`, 3 rounds of 5 runs: 31.4 to 32.4 MB against 29.3 to 30.4 MB), past
/// the 30 MB the benchmark allows; up to here, a page costs at most half a megabyte more (and
/// stays far below [`MAX_RESPELLED`], so a page split prints its records as one scanned whole).
const SPLIT_UP_TO: usize = 1 << 20;

struct PageWalk<'b> {
    body: &'b [u8],
    at: usize,
    scanner: RecordScanner,
    page: PageAsSent,
    /// Whether the records' top-level entries are kept.
    with_entries: bool,
    /// Where the records are scanned in two halves.
    beside: Option<Beside<'b>>,
    /// Where the first record this walk scans starts.
    first_record: usize,
}

/// Where a walk over the records of an array stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// After the array's `]`.
    AtEnd,
    /// At the start of the record where another walk took over.
    AtSecondHalf,
    /// After the most records it was to scan, and a `,`.
    AfterMost,
}

impl<'b> PageWalk<'b> {
    fn space(&mut self) {
        while matches!(self.body.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.body.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// The well-formed value at the current position, skipped.
    fn value(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        self.at += self.scanner.skip_value(&self.body[start..])?;
        Some(start..self.at)
    }

    /// An object key, borrowed from the body unless it has escapes.
    fn key(&mut self) -> Option<Cow<'b, str>> {
        if self.body.get(self.at) != Some(&b'"') {
            return None;
        }
        let quoted = &self.body[self.value()?];
        let inner = &quoted[1..quoted.len() - 1];
        if inner.contains(&b'\\') {
            serde_json::from_slice::<String>(quoted)
                .ok()
                .map(Cow::Owned)
        } else {
            // The body was checked to be UTF-8.
            std::str::from_utf8(inner).ok().map(Cow::Borrowed)
        }
    }

    /// Follows `path` down objects, then takes the array's elements. `fields`: the top-level
    /// fields to locate too; `None` below the top level.
    fn follow(&mut self, path: &[String], fields: Option<&[String]>) -> Option<()> {
        let Some((wanted_key, rest)) = path.split_first() else {
            return self.records();
        };
        self.eat(b'{')?;
        let mut found = false;
        self.space();
        if self.eat(b'}').is_some() {
            return None;
        }
        loop {
            self.space();
            let name = self.key()?;
            self.space();
            self.eat(b':')?;
            self.space();
            if name == wanted_key.as_str() {
                if found {
                    // The parsed object would keep the last one; leave that to the full
                    // selector.
                    return None;
                }
                found = true;
                self.follow(rest, None)?;
            } else if fields
                .is_some_and(|fields| fields.iter().any(|f| *f == name) || name.contains('.'))
            {
                if self.page.fields.iter().any(|(f, _)| *f == name) {
                    return None;
                }
                let range = self.value()?;
                self.page.fields.push((name.into_owned(), range));
            } else {
                self.value()?;
            }
            self.space();
            if self.eat(b'}').is_some() {
                return found.then_some(());
            }
            self.eat(b',')?;
        }
    }

    /// The array of records, each scanned and classified.
    fn records(&mut self) -> Option<()> {
        self.eat(b'[')?;
        self.space();
        if self.eat(b']').is_some() {
            return Some(());
        }
        self.first_record = self.at;
        let probed = match self.beside {
            Some(_) => self.records_until(None, PROBED_RECORDS)?,
            // Nothing probed: every record is still to scan.
            None => Stopped::AfterMost,
        };
        let second_half = match (self.beside, probed) {
            (Some(beside), Stopped::AfterMost) if self.mostly_respelled() => {
                second_half_start(&mut self.scanner, self.body, self.first_record)
                    .filter(|&start| start > self.at)
                    .map(|start| (beside, start))
            }
            _ => None,
        };
        let Some((beside, second_start)) = second_half else {
            if probed == Stopped::AfterMost {
                self.records_until(None, usize::MAX)?;
            }
            self.move_all_to_respelled();
            return Some(());
        };
        // The second half is scanned from where a record seems to start; it is taken if this
        // walk reaches that place between two records (and not inside a string).
        let mut scanner = self.scanner.clone();
        // Its first record does not follow the last one this walk scanned.
        scanner.forget_last_record();
        let mut second = PageWalk {
            body: self.body,
            at: second_start,
            scanner,
            page: PageAsSent::default(),
            with_entries: self.with_entries,
            beside: None,
            first_record: second_start,
        };
        let (mut first_stopped, mut second_stopped) = (None, None);
        beside(
            &mut || second_stopped = Some(second.records_until(None, usize::MAX)),
            &mut || first_stopped = Some(self.records_until(Some(second_start), usize::MAX)),
        );
        match first_stopped?? {
            Stopped::AtEnd | Stopped::AfterMost => {}
            Stopped::AtSecondHalf => {
                second_stopped??;
                self.append(second.page);
                self.at = second.at;
            }
        }
        self.move_all_to_respelled();
        Some(())
    }

    /// Whether most records scanned so far are respelled.
    fn mostly_respelled(&self) -> bool {
        let records = &self.page.records;
        let respelled = records
            .iter()
            .filter(|r| r.class != AsSent::Identical)
            .count();
        2 * respelled > records.len()
    }

    /// Scans the records from here to the array's `]`, to the start of a record at `stop`, or
    /// up to `most` of them.
    fn records_until(&mut self, stop: Option<usize>, most: usize) -> Option<Stopped> {
        for _ in 0..most {
            self.space();
            let start = self.at;
            if Some(start) == stop {
                return Some(Stopped::AtSecondHalf);
            }
            if self.body.get(start) != Some(&b'{') {
                return None;
            }
            let respelled_from = self.page.respelled.len();
            let room = respelled_from < MAX_RESPELLED;
            let mut scratch = Vec::new();
            let out = if room {
                &mut self.page.respelled
            } else {
                &mut scratch
            };
            let (len, mut class) = self.scanner.scan_record(&self.body[start..], out)?;
            match class {
                AsSent::Respelled if !room => class = AsSent::Reprint,
                AsSent::Respelled if respelled_from == 0 => {
                    // The page's records are likely all alike, and then all of them will be
                    // copied here: room for the page at once (the records from this walk's
                    // first on), counting what is written (the buffer given is often the
                    // body's size already; growing it copies it).
                    let page = (self.body.len() - self.first_record).min(MAX_RESPELLED);
                    let written = self.page.respelled.len();
                    self.page.respelled.reserve(page.saturating_sub(written));
                }
                _ => {}
            }
            self.at += len;
            let entries_from = self.page.entries.len();
            if self.with_entries {
                self.page.entries.extend_from_slice(self.scanner.entries());
            }
            if self.page.records.is_empty() {
                // Room for as many records as the rest of the page holds if they are like the
                // first, or up to a third shorter: growing these lists copied them several
                // times a page (perf on `cargo xtask bench` scenario (b)). Room never written
                // costs no memory.
                let expected = 1 + (self.body.len() - self.at) * 3 / (2 * len);
                self.page.records.reserve(expected);
                let entries = self.page.entries.len() - entries_from;
                self.page.entries.reserve(expected * entries);
            }
            self.page.records.push(RecordAsSent {
                sent: start..self.at,
                class,
                respelled: respelled_from..self.page.respelled.len(),
                entries: entries_from..self.page.entries.len(),
                watched: self.scanner.watched().cloned(),
                same_keys: self.scanner.same_keys_as_last(),
            });
            self.space();
            if self.eat(b']').is_some() {
                return Some(Stopped::AtEnd);
            }
            self.eat(b',')?;
        }
        Some(Stopped::AfterMost)
    }

    /// Appends the records another walk scanned after this one's.
    fn append(&mut self, second: PageAsSent) {
        let respelled_base = self.page.respelled.len();
        let entries_base = self.page.entries.len();
        self.page.respelled.extend_from_slice(&second.respelled);
        self.page.entries.extend_from_slice(&second.entries);
        let shift = |range: Range<usize>, base: usize| range.start + base..range.end + base;
        self.page
            .records
            .extend(second.records.into_iter().map(|record| RecordAsSent {
                respelled: shift(record.respelled, respelled_base),
                entries: shift(record.entries, entries_base),
                ..record
            }));
    }

    /// Once most of the page was respelled, copies the records that print as sent to the
    /// respelled bytes too: then no record holds on to the body, and the page is not kept twice
    /// until it is written. A page with few respelled records keeps its body instead, which
    /// spares copying it (callgrind on `cargo xtask bench` scenario (a), a tenth of whose
    /// records are respelled: the copy was 5% of the read).
    fn move_all_to_respelled(&mut self) {
        if self.page.respelled.len() < self.body.len() / 2 {
            return;
        }
        for record in &mut self.page.records {
            if record.class == AsSent::Identical {
                let from = self.page.respelled.len();
                self.page
                    .respelled
                    .extend_from_slice(&self.body[record.sent.clone()]);
                record.respelled = from..self.page.respelled.len();
            }
        }
    }
}

/// Where a record seems to start in the second half of the array whose first record starts at
/// `first`: the first object from the middle of the rest of the body that follows `},` and has
/// the first record's first two keys (a nested object in a record seldom has). A string could
/// hold such bytes too; the walk over the first half tells.
fn second_half_start(scanner: &mut RecordScanner, body: &[u8], first: usize) -> Option<usize> {
    /// Candidates looked at before the page is scanned whole instead.
    const TRIES: usize = 64;
    let keys = leading_keys(scanner, body, first)?;
    let middle = first + (body.len() - first) / 2;
    memchr::memmem::find_iter(&body[middle..], b"},{")
        .take(TRIES)
        .map(|found| middle + found + 2)
        .find(|&start| leading_keys(scanner, body, start) == Some(keys))
}

/// The first two keys (as sent, quotes included) of the compact object at `at`.
fn leading_keys<'b>(
    scanner: &mut RecordScanner,
    body: &'b [u8],
    at: usize,
) -> Option<(&'b [u8], &'b [u8])> {
    let mut at = at;
    let skip = |at: &mut usize, expected: u8| (body.get(*at) == Some(&expected)).then(|| *at += 1);
    skip(&mut at, b'{')?;
    let first = at..at + scanner.skip_value(&body[at..])?;
    at = first.end;
    skip(&mut at, b':')?;
    at += scanner.skip_value(&body[at..])?;
    skip(&mut at, b',')?;
    let second = at..at + scanner.skip_value(&body[at..])?;
    let is_string = |key: &[u8]| key.first() == Some(&b'"');
    let (first, second) = (&body[first], &body[second]);
    (is_string(first) && is_string(second)).then_some((first, second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str, path: &[&str]) -> Option<Vec<&'static str>> {
        let body: &'static str = Box::leak(body.to_owned().into_boxed_str());
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        page_as_sent(body, &path, &[], false, None, Vec::new(), None)
            .map(|page| page.records.into_iter().map(|r| &body[r.sent]).collect())
    }

    #[test]
    fn finds_the_objects_of_the_array_at_the_path() {
        assert_eq!(
            records(
                r#"{"total": 2, "data": [{"id":1}, {"id": 2, "a": [1]}], "next": null}"#,
                &["data"]
            ),
            Some(vec![r#"{"id":1}"#, r#"{"id": 2, "a": [1]}"#])
        );
        assert_eq!(
            records(r#"{"a": {"\u0062": [{}]}}"#, &["a", "b"]),
            Some(vec!["{}"])
        );
        assert_eq!(records(r#"{"data": []}"#, &["data"]), Some(vec![]));
    }

    #[test]
    fn finds_the_top_level_fields_asked_for() {
        let body = r#"{"data": [{"id": 1}], "next": "https://x/2", "a.b": 1, "c": {"next": 3}}"#;
        let page = page_as_sent(
            body,
            &["data".to_owned()],
            &["next".to_owned()],
            false,
            None,
            Vec::new(),
            None,
        )
        .unwrap();
        let fields: Vec<(&str, &str)> = page
            .fields
            .iter()
            .map(|(name, range)| (name.as_str(), &body[range.clone()]))
            .collect();
        assert_eq!(fields, [("next", r#""https://x/2""#), ("a.b", "1")]);
        // A field that is the records' own key, or repeated, is left to the full selector.
        assert_eq!(
            page_as_sent(
                body,
                &["data".to_owned()],
                &["data".to_owned()],
                false,
                None,
                Vec::new(),
                None,
            ),
            None
        );
        let repeated = r#"{"data": [], "next": 1, "next": 2}"#;
        assert_eq!(
            page_as_sent(
                repeated,
                &["data".to_owned()],
                &["next".to_owned()],
                false,
                None,
                Vec::new(),
                None,
            ),
            None
        );
    }

    /// Each record of `page` as it is printed (from the body or the respelled bytes), with
    /// whether it is printed from the body.
    fn printed<'p>(page: &'p PageAsSent, body: &'p [u8]) -> Vec<(AsSent, &'p str, bool)> {
        page.records
            .iter()
            .map(|record| {
                let from_body = record.respelled.is_empty();
                let bytes = match from_body {
                    false => &page.respelled[record.respelled.clone()],
                    true => &body[record.sent.clone()],
                };
                (record.class, std::str::from_utf8(bytes).unwrap(), from_body)
            })
            .collect()
    }

    /// The records of `body` at `data`, scanned for editing, with `id` watched.
    fn walked_for_editing(body: &[u8]) -> PageAsSent {
        page_as_sent(
            std::str::from_utf8(body).unwrap(),
            &["data".to_owned()],
            &[],
            true,
            Some("id"),
            Vec::new(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_page_with_few_respelled_records_prints_the_others_from_the_body() {
        let body =
            br#"{"data": [{"id":1}, {"id":2,"a":1.50}, {"id":3}, {"id":4,"id":5}, {"id": 6}]}"#;
        let page = walked_for_editing(body);
        assert_eq!(
            printed(&page, body),
            [
                (AsSent::Identical, r#"{"id":1}"#, true),
                (AsSent::Respelled, r#"{"id":2,"a":1.5}"#, false),
                (AsSent::Identical, r#"{"id":3}"#, true),
                (AsSent::Reprint, r#"{"id":4,"id":5}"#, true),
                (AsSent::Respelled, r#"{"id":6}"#, false),
            ]
        );
        assert_eq!(page.respelled, br#"{"id":2,"a":1.5}{"id":6}"#);
        let record = &page.records[4];
        let watched = record.watched.as_ref().unwrap();
        assert_eq!(
            &page.respelled[record.respelled.clone()][watched.value.clone()],
            b"6"
        );
        let entries = &page.entries[record.entries.clone()];
        let printed = &page.respelled[record.respelled.clone()];
        assert_eq!(entries.len(), 1);
        assert_eq!(&printed[entries[0].key.clone()], br#""id""#);
        assert_eq!(&printed[entries[0].value.clone()], b"6");
    }

    #[test]
    fn once_most_of_a_page_is_respelled_no_record_is_printed_from_the_body() {
        let body = br#"{"data":[{"id":1},{"id":2.50},{"id":3.50},{"id":4.50}]}"#;
        let page = walked_for_editing(body);
        assert_eq!(
            printed(&page, body),
            [
                (AsSent::Identical, r#"{"id":1}"#, false),
                (AsSent::Respelled, r#"{"id":2.5}"#, false),
                (AsSent::Respelled, r#"{"id":3.5}"#, false),
                (AsSent::Respelled, r#"{"id":4.5}"#, false),
            ]
        );
        assert_eq!(page.respelled, br#"{"id":2.5}{"id":3.5}{"id":4.5}{"id":1}"#);
        let record = &page.records[0];
        let watched = record.watched.as_ref().unwrap();
        assert_eq!(
            &page.respelled[record.respelled.clone()][watched.value.clone()],
            b"1"
        );
    }

    #[test]
    fn any_other_shape_is_left_to_the_full_selector() {
        for (body, path) in [
            (r#"{"data": [1, 2]}"#, &["data"][..]),
            (r#"{"data": {"id": 1}}"#, &["data"]),
            (r#"{"data": [{}], "data": [{}]}"#, &["data"]),
            (r#"{"other": [{}]}"#, &["data"]),
            (r#"[{"data": [{}]}]"#, &["data"]),
            (r#"{"data": [{}]} trailing"#, &["data"]),
            (r#"{"data": [{]}"#, &["data"]),
            (r#"{"data": [{"a": "\ud800"}]"#, &["data"]),
            (r#"{"a": [{"b": [{}]}]}"#, &["a", "b"]),
        ] {
            assert_eq!(records(body, path), None, "{body}");
        }
    }

    /// Runs the two halves one after the other, as [`Beside`] may.
    fn one_after_the_other(there: &mut (dyn FnMut() + Send), here: &mut dyn FnMut()) {
        there();
        here();
    }

    #[test]
    fn a_page_scanned_in_two_halves_gives_what_it_gives_scanned_whole() {
        let mut state: u64 = 11;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let (mut split, mut whole) = (0, 0);
        for _ in 0..60 {
            // Records alike, most with a decimal to respell, some a null, an escape, a string with
            // `},{` in it, or a nested array of objects with the records' first keys (where a
            // second half may seem to start but does not).
            let mut body = String::from(r#"{"total":1,"data":["#);
            for id in 0..900 + next(400) {
                if id > 0 {
                    body.push(',');
                }
                body.push_str(&format!(r#"{{"id":{id},"name":"n{}""#, next(1000)));
                // Most records respelled, as a page must be to be split; some pages not.
                if next(8) < 6 {
                    body.push_str(r#","amount":2.50"#);
                }
                match next(8) {
                    0 => body.push_str(r#","score":1.50"#),
                    1 => body.push_str(r#","gone":null"#),
                    2 => body.push_str(r#","text":"a\"},{\"id\":1,\"name\":\"x\"}""#),
                    3 | 6 => body.push_str(
                        r#","items":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}]"#,
                    ),
                    4 => body.push_str(r#","note":"\u00e9 },{ ]""#),
                    _ => body.push_str(r#","tags":["a","b"],"ok":true"#),
                }
                body.push_str(
                    r#","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
                );
            }
            body.push_str(r#"],"next":"n"}"#);
            let body = body.as_bytes();
            assert!(body.len() >= SPLIT_FROM);
            for editing in [false, true] {
                let walk = |beside: Option<Beside<'_>>| {
                    let path = ["data".to_owned()];
                    let fields = ["next".to_owned()];
                    let watch = Some("id");
                    let text = std::str::from_utf8(body).unwrap();
                    page_as_sent(text, &path, &fields, editing, watch, Vec::new(), beside)
                };
                let expected = walk(None).unwrap();
                assert_eq!(walk(Some(&one_after_the_other)), Some(expected.clone()));
                // Whether the second half was scanned apart (its first record found).
                let mut scanner = RecordScanner::for_text(body).unwrap();
                let first = expected.records[0].sent.start;
                let start = second_half_start(&mut scanner, body, first).unwrap();
                if expected
                    .records
                    .iter()
                    .any(|record| record.sent.start == start)
                {
                    split += 1;
                } else {
                    whole += 1;
                }
            }
        }
        assert!(
            split > 20 && whole > 5,
            "{split} pages in halves, {whole} whole"
        );
    }
}
