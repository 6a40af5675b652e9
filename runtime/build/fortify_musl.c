/*
 * Linked only into berth built for a musl target (build/musl.rs).
 *
 * The static libseccomp of glibc distributions is compiled with
 * _FORTIFY_SOURCE, so its PFC exporter calls glibc's checked
 * __fprintf_chk, which musl does not have. The check it adds (%n in a
 * writable format) cannot apply to libseccomp's constant formats, so
 * forwarding to vfprintf is what glibc would do with them.
 */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
	va_list ap;
	int n;

	(void)flag;
	va_start(ap, format);
	n = vfprintf(stream, format, ap);
	va_end(ap);
	return n;
}
