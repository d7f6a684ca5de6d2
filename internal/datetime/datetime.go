// Package datetime writes times as the JSON of the API writes them, RFC 3339 in UTC, by hand: for the
// REST writer (restjson) and the emulator's answers, which write many per page and for which
// time.Time.AppendFormat's layout parsing was a visible share of the work.
package datetime

// The range Append covers: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, as Unix seconds.
const (
	MinSeconds = -62135596800
	MaxSeconds = 253402300799
)

// Append appends the UTC time secs seconds after the Unix epoch as 2006-01-02T15:04:05, as
// time.Time.AppendFormat would, without its layout parsing: the date from the day number by the civil
// calendar's 400-year eras (each 146,097 days, starting on March 1st so that leap days end a year).
// secs must be within [MinSeconds, MaxSeconds].
func Append(b []byte, secs int64) []byte {
	days, rem := secs/86400, secs%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // day of the era, [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of the era, [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the year from March 1st, [0, 365]
	mp := (5*doy + 2) / 153                                // month from March, [0, 11]
	day := doy - (153*mp+2)/5 + 1
	month, year := mp+3, yoe+era*400
	if month > 12 {
		month, year = month-12, year+1
	}
	hour, minute, sec := rem/3600, rem/60%60, rem%60
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
}
