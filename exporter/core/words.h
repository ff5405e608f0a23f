/* SPDX-License-Identifier: Apache-2.0 */
/*
 * words.h - the words a person reads for a layer or a failure reason, in
 * Chinese or English (words.c): "timeout" is "连接超时（可能是防火墙丢弃
 * SYN）" / "connection timed out (a firewall may be dropping SYNs)", the
 * layer "network" is "网络层" / "network layer". One table, shared by the
 * relay's pages, the health page and diagnose. Pure; any thread.
 */
#ifndef CW_WORDS_H
#define CW_WORDS_H

/* The reader's language. */
enum cw_lang { CW_LANG_ZH = 0, CW_LANG_EN };

/* cw_layer_words() returns the words for a value of the rules' layer label
 * (network, tls, http, database, cache, host, connwatch); any other value is
 * returned as it is. */
const char *cw_layer_words(const char *layer, enum cw_lang lang);

/* cw_reason_words() returns the explanation of a reason label value (every
 * reason of SPEC.md, and redirect_refused); any other value is returned as
 * it is. */
const char *cw_reason_words(const char *reason, enum cw_lang lang);

#endif
