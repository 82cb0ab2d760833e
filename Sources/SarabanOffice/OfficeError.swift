/// A domain error with its message in Thai and in English, both saying what to do next.
public struct OfficeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case invalidDate, unknownKind, missingField, invalidValue, topSecretRefused, invalidTransition
        case notRegisterOwner, unknownNumber, alreadyCancelled, invalidLetterCode
    }

    public let code: Code
    public let thai: String
    public let english: String

    public init(_ code: Code, th: String, en: String) {
        self.code = code
        self.thai = th
        self.english = en
    }

    public var description: String { "\(thai) / \(english)" }
}
