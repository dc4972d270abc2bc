#pragma once
#include <libxml/xmlversion.h>
// Swift 6.3.0/6.3.1: libxml2's ICU headers clash with Foundation's bundled ICU
// (swiftlang/swift#88485). Swift never touches the ICU-only tail of
// xmlCharEncodingHandler, so hide it. Remove once the toolchain is >= 6.3.2.
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
