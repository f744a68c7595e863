package rooms

// OptString and DecodeSeq expose the field decoders to the differential fuzz test.
var (
	OptString = optString
	DecodeSeq = decodeSeq
)
