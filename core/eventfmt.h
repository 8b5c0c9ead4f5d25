/* SPDX-License-Identifier: Apache-2.0 */
/* core/eventfmt.h: writes a tw_event as one JSON object (the `trailwatch decode` line format, also
 * what later query output and alarm evidence reuse). Appends to a caller's tw_buf; no I/O, no
 * allocation beyond the buffer's own growth (bounded by its max). */
#ifndef TW_CORE_EVENTFMT_H
#define TW_CORE_EVENTFMT_H

#include "core/buf.h"
#include "core/err.h"
#include "core/event.h"

/* Append "raw": the original record. A record that is JSON (CloudTrail records and CloudWatch
 * log events as delivered) and holds no CR or LF is embedded verbatim, byte for byte, as a JSON
 * value; anything else (text lines, pretty-printed records) is written as a JSON string whose
 * decoded value is the original bytes (invalid UTF-8, which JSON cannot carry, becomes U+FFFD).
 * Either way the output stays one line. */
#define TW_EVENTFMT_RAW 0x1u

/* Appends one JSON object for ev to b, without a trailing newline:
 *
 *   {"kind":"cloudtrail","time":"2026-11-02T00:00:00Z","eventID":"...","eventName":"...",
 *    ...every non-empty extracted field under tw_field_name(f), in enum tw_field order...,
 *    "readOnly":true|false (omitted when absent),"resources":["...",...] (omitted when none),
 *    "line":N,"index":N[,"raw":...]}
 *
 * Strings go through tw_json_write_str (so invalid UTF-8 becomes U+FFFD), time through
 * tw_time_format. flags: 0 or TW_EVENTFMT_RAW. ev is borrowed. On failure (TW_ELIMIT when b's max
 * would be passed, TW_ENOMEM) b is cut back to its length before the call. Thread-safe on
 * distinct buffers. */
enum tw_rc tw_event_write_json(struct tw_buf *b, const struct tw_event *ev, unsigned flags, struct tw_err *err);

#endif
